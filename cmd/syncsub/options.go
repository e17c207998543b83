package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/recovery"
)

// options is what runSubscriber needs, checked.
type options struct {
	sub       coord.SubscriberConfig
	output    string
	exitOnEnd bool
	metrics   string // --metrics-addr; empty: off
	pprof     string // --pprof; empty: off
	compat    bool   // --compat zguide: talk to the zguide's plain syncpub (compat.go)
	// relays lists every --connect/--sync pair; with more than one, the
	// subscriber uses one at a time and fails over (failover.go).
	relays        []coord.Endpoints
	failoverAfter time.Duration
}

// buildOptions turns the settings into the subscriber's configuration. It
// returns a UsageError listing every problem, one line each, named by
// its flag: everything the run would refuse is found here, so
// --check-config fails exactly when the run would.
func buildOptions(s settings.Subscriber, r *cli.Resolved) (options, error) {
	var c cli.Checks
	cfg := coord.SubscriberConfig{Recovery: s.Recovery, ID: s.ID, StartAt: s.StartAt, StateDir: s.StateDir}
	eps := endpointList(s.Connect, s.Sync, &c)
	if len(eps) > 0 {
		cfg.Connect, cfg.Sync = eps[0].Pub, eps[0].Sync
	}
	if len(eps) > 1 {
		c.AtLeast("failover-after", s.FailoverAfter, minFailoverAfter)
		if s.Recovery != "" {
			c.Add(errors.New("recovery: give no --recovery with several --connect; each relay's ACK names its own"))
		}
		if s.Compat == "zguide" {
			c.Add(errors.New("compat zguide: one --connect only"))
		}
	}
	if c.Prefixes("subscribe", s.Subscribe) {
		cfg.Subscribe = s.Subscribe
	}
	if c.AtLeast("handshake-timeout", s.HandshakeTimeout, coord.MinHandshakeTimeout) {
		cfg.HandshakeTimeout = s.HandshakeTimeout
	}
	cfg.Stream = recovery.DefaultStreamConfig()
	if c.AtLeast("repair-timeout", s.RepairTimeout, recovery.MinRepairTimeout) {
		cfg.Stream.RepairTimeout = s.RepairTimeout
	}
	if c.SizeAtLeast("max-held-bytes", s.MaxHeldBytes, 1) {
		cfg.Stream.MaxHeldBytes = int64(s.MaxHeldBytes)
	}
	if c.AtLeast("publisher-timeout", s.PublisherTimeout, coord.MinPublisherTimeout) {
		cfg.PublisherTimeout = s.PublisherTimeout
	}
	cfg.ConnectTimeout = -1 // 0: wait until stopped
	if s.ConnectTimeout != 0 && c.AtLeast("connect-timeout", s.ConnectTimeout, coord.MinConnectTimeout) {
		cfg.ConnectTimeout = s.ConnectTimeout
	}
	c.Add(withTLS(s.TLS, &cfg)...)
	c.Add(withGossip(s.Gossip, r, &cfg)...)
	c.Add(cli.CheckMetricsAddr(s.MetricsAddr), cli.CheckPprofAddr(s.Pprof))
	if s.Compat == "zguide" && (s.Output == "json" || s.Output == "runs") {
		c.Add(fmt.Errorf("compat zguide: --output %s is not supported (use text or count); updates carry no topic or sequence", s.Output))
	}
	if err := validate(&cfg, &c); err != nil {
		return options{}, err
	}
	return options{sub: cfg, output: string(s.Output), exitOnEnd: s.ExitOnEnd, metrics: s.MetricsAddr, pprof: s.Pprof, compat: s.Compat == "zguide",
		relays: eps, failoverAfter: s.FailoverAfter}, nil
}

// validate adds cfg's own problems to c and returns them all as one
// UsageError, or nil.
func validate(cfg *coord.SubscriberConfig, c *cli.Checks) error {
	cfg.Handler = func(coord.Event) {} // replaced when running
	if err := cfg.Validate(); err != nil {
		c.Add(cli.SplitLines(err)...)
	}
	return c.Err()
}

// withTLS sets cfg.TLS from the TLS settings.
func withTLS(t cli.TLS, cfg *coord.SubscriberConfig) []error {
	c, problems := t.Load()
	cfg.TLS = c
	return problems
}

// withGossip sets cfg.Gossip from the gossip settings. Publishers are then
// discovered, and --connect/--sync name a static one only when given.
func withGossip(g cli.Gossip, r *cli.Resolved, cfg *coord.SubscriberConfig) []error {
	gc, problems := g.Config()
	if gc == nil || len(problems) > 0 {
		return problems
	}
	cfg.Gossip = gc
	if !r.IsSet("connect") {
		cfg.Connect = ""
	}
	if !r.IsSet("sync") {
		cfg.Sync = ""
	}
	if gc.Node.NodeName == "" {
		gc.Node.NodeName = cfg.ID
	}
	return nil
}

// minFailoverAfter is the floor of --failover-after: a connection
// takes a few milliseconds to come back after a hiccup.
const minFailoverAfter = 100 * time.Millisecond

// endpointList pairs the comma-separated endpoints of --connect and
// --sync (endpoints hold no commas).
func endpointList(connects, syncs string, c *cli.Checks) []coord.Endpoints {
	connect, sync := strings.Split(connects, ","), strings.Split(syncs, ",")
	if len(connect) != len(sync) {
		c.Add(fmt.Errorf("connect and sync: %d and %d endpoints; give one --sync per --connect", len(connect), len(sync)))
		return nil
	}
	eps := make([]coord.Endpoints, len(connect))
	for i := range connect {
		eps[i] = coord.Endpoints{Pub: connect[i], Sync: sync[i]}
	}
	return eps
}
