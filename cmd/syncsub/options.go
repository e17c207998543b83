package main

import (
	"errors"

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
	compat    bool   // --compat zguide: talk to the zguide's plain syncpub (compat.go)
}

// buildOptions turns the settings into the subscriber's configuration. It
// returns a UsageError listing every problem.
func buildOptions(s settings.Subscriber, r *cli.Resolved) (options, error) {
	cfg := coord.SubscriberConfig{
		Connect: s.Connect, Sync: s.Sync, Recovery: s.Recovery, ID: s.ID,
		Subscribe: s.Subscribe, StartAt: s.StartAt, StateDir: s.StateDir, HandshakeTimeout: s.HandshakeTimeout,
	}
	cfg.Stream = recovery.DefaultStreamConfig()
	cfg.Stream.RepairTimeout = s.RepairTimeout
	cfg.Stream.MaxHeldBytes = int64(s.MaxHeldBytes)
	cfg.PublisherTimeout = s.PublisherTimeout
	problems := withTLS(s.TLS, &cfg)
	problems = append(problems, withGossip(s.Gossip, r, &cfg)...)
	if err := cli.CheckMetricsAddr(s.MetricsAddr); err != nil {
		problems = append(problems, err)
	}
	if s.Compat == "zguide" && s.Output == "json" {
		problems = append(problems, errors.New("compat zguide: --output json is not supported (use text or count); updates carry no topic or sequence"))
	}
	if err := validate(&cfg, problems); err != nil {
		return options{}, err
	}
	return options{sub: cfg, output: string(s.Output), exitOnEnd: s.ExitOnEnd, metrics: s.MetricsAddr, compat: s.Compat == "zguide"}, nil
}

// validate adds cfg's own problems to problems and returns them as one
// UsageError, or nil.
func validate(cfg *coord.SubscriberConfig, problems []error) error {
	cfg.Handler = func(coord.Event) {} // replaced when running
	if err := cfg.Validate(); err != nil {
		problems = append(problems, cli.SplitLines(err)...)
	}
	if len(problems) > 0 {
		return &cli.UsageError{Err: errors.Join(problems...)}
	}
	return nil
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
