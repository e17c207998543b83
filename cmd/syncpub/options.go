package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
)

// options is what runPublisher needs, checked.
type options struct {
	pub     coord.PublisherConfig
	count   int
	payload []byte
	size    int
	topics  []string
	rate    float64
	stdin   bool
	drain   time.Duration
	// lingerAfterEnd is served before --drain-timeout starts to count.
	lingerAfterEnd time.Duration
	metrics        string // --metrics-addr; empty: off
	pprof          string // --pprof; empty: off
	compat         bool   // --compat zguide: serve the zguide's plain syncsub (compat.go)
}

// buildOptions turns the settings into the publisher's configuration. It
// returns a UsageError listing every problem, one line each, named by
// its flag: everything the run would refuse is found here, so
// --check-config fails exactly when the run would.
func buildOptions(s settings.Publisher, r *cli.Resolved) (options, error) {
	var c cli.Checks
	tlsCfg, tlsProblems := s.TLS.Load()
	c.Add(tlsProblems...)
	cfg := servingConfig(s.Serving, tlsCfg, len(tlsProblems) == 0, &c)
	cfg.MaxTopics = s.MaxTopics
	cfg.MaxBatchRecords = s.MaxBatchRecords
	cfg.Linger = s.Linger
	cfg.QuorumLost, _ = coord.ParseLostPolicy(string(s.QuorumLost)) // a choice: already checked
	cfg.Settle = s.Settle
	gossip, gossipProblems := s.Gossip.Config()
	if len(gossipProblems) == 0 {
		cfg.Gossip = gossip
	}
	c.Add(gossipProblems...)
	if s.Quorum != "" {
		rule, err := coord.ParseQuorumRule(s.Quorum)
		switch {
		case r.IsSet("expect"):
			c.Add(errors.New("quorum and expect: give one (expect counts handshakes, quorum counts live cluster members)"))
		case err != nil:
			c.Add(fmt.Errorf("quorum: %v", err))
		case !s.Gossip.Enabled():
			c.Add(fmt.Errorf("quorum %s counts gossip members: give --gossip-bind (the address subscribers --join), or use --expect", s.Quorum))
		default:
			cfg.Quorum, cfg.Expect = rule, 0
		}
	}
	if c.Topics("topics", s.Topics) && !s.Stdin {
		cfg.Topics = s.Topics // announced to the cluster; --stdin may publish any topic
	}
	if s.ID != "" {
		id, err := envelope.ParseID(s.ID)
		if err != nil {
			c.Add(fmt.Errorf("id: %v", err))
		}
		cfg.ID = id
	} else if s.DataDir == "" {
		cfg.ID = stableID(cfg.Bind)
	} // with --data-dir, the directory keeps the id
	c.Add(cli.CheckMetricsAddr(s.MetricsAddr), cli.CheckPprofAddr(s.Pprof))
	if s.Compat == "zguide" && s.Stdin {
		c.Add(errors.New("compat zguide: --stdin is not supported; the zguide job publishes --count copies of --payload"))
	}
	if int64(s.Size) > int64(cfg.MaxPayload) {
		c.Add(fmt.Errorf("size: %v exceeds the %v payload limit", s.Size, cli.Bytes(cfg.MaxPayload)))
	}
	if err := cfg.Validate(); err != nil {
		c.Add(cli.SplitLines(err)...)
	}
	if err := c.Err(); err != nil {
		return options{}, err
	}
	return options{
		pub: cfg, count: s.Count, payload: []byte(s.Payload), size: s.Size.Int(),
		topics: s.Topics, rate: s.Rate, stdin: s.Stdin, drain: s.DrainTimeout, lingerAfterEnd: s.LingerAfterEnd, metrics: s.MetricsAddr, pprof: s.Pprof,
		compat: s.Compat == "zguide",
	}, nil
}

// Floors of settings the libraries take any positive value of: syncing
// the journal more often than every millisecond only burns the disk,
// and a drain timeout below 100ms cannot hand anything over.
const (
	minFsyncInterval = time.Millisecond
	minDrainTimeout  = 100 * time.Millisecond
)

// stableID derives the publisher id from the host and bind endpoint, so a
// restarted publisher keeps its id and subscribers see a new epoch of the
// same publisher rather than a stranger.
func stableID(bind string) envelope.ID {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "|" + bind))
	var id envelope.ID
	copy(id[:], sum[:])
	return id
}
