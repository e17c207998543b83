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
	"github.com/syncmq/syncmq/journal"
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
	metrics string // --metrics-addr; empty: off
	compat  bool   // --compat zguide: serve the zguide's plain syncsub (compat.go)
}

// buildOptions turns the settings into the publisher's configuration. It
// returns a UsageError listing every problem.
func buildOptions(s settings.Publisher, r *cli.Resolved) (options, error) {
	var problems []error
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = s.Bind, s.SyncBind, s.RecoveryBind
	cfg.History.MaxMessages = s.HistoryMessages
	cfg.History.MaxBytes = int64(s.HistoryBytes)
	cfg.History.MaxTopicBytes = int64(s.HistoryTopic)
	cfg.RecoveryLimit.GlobalBytesRate, cfg.RecoveryLimit.GlobalBytesBurst = float64(s.RecoveryRate), int64(s.RecoveryRate)
	cfg.RecoveryLimit.HostBytesRate, cfg.RecoveryLimit.HostBytesBurst = float64(s.RecoveryHost), int64(s.RecoveryHost)
	cfg.MaxTopics, cfg.MaxSubscribers, cfg.JoinTimeout = s.MaxTopics, s.MaxSubscribers, s.JoinTimeout
	cfg.RepairWindow = s.RepairWindow
	if s.DataDir != "" {
		cfg.DataDir = s.DataDir
		cfg.Journal = journal.DefaultConfig()
		cfg.Journal.Sync = map[settings.Fsync]journal.SyncMode{"interval": journal.SyncInterval, "always": journal.SyncAlways, "never": journal.SyncNever}[s.Fsync]
		cfg.Journal.SyncInterval = s.FsyncInterval
		cfg.Journal.MaxBytes = int64(s.DataBytes)
		cfg.Journal.Retention = journal.Retention{MaxMessages: int64(s.HistoryMessages), MaxBytes: int64(s.HistoryTopic), MaxAge: s.RetentionAge}
	}
	cfg.MaxBatchRecords = s.MaxBatchRecords
	cfg.Linger = s.Linger
	cfg.Expect = s.Expect
	cfg.QuorumTimeout = s.QuorumTimeout
	cfg.QuorumPolicy, _ = coord.ParseQuorumPolicy(string(s.QuorumPolicy)) // a choice: already checked
	cfg.QuorumLost, _ = coord.ParseLostPolicy(string(s.QuorumLost))
	cfg.HeartbeatInterval = s.Heartbeat
	cfg.Wire.SlowTimeout = s.SlowTimeout
	cfg.Wire.QueueBytes = s.QueueBytes
	cfg.Wire.MaxQueueBytes = s.MaxQueueBytes
	cfg.MaxSubscribersPerIP = s.MaxSubsPerIP
	cfg.Wire.MaxPendingPerIP = s.HandshakesPerIP
	cfg.Wire.MaxSubscriptionBytes, cfg.Wire.SubscriptionBudget = s.MaxSubBytes, s.SubBudget
	cfg.Settle = s.Settle
	tlsCfg, tlsProblems := s.TLS.Load()
	cfg.TLS = tlsCfg
	problems = append(problems, tlsProblems...)
	cfg.Allow = append(cfg.Allow, s.Allow...)
	if s.AllowFile != "" {
		ids, err := cli.ReadAllowFile(s.AllowFile)
		if err != nil {
			problems = append(problems, err)
		}
		cfg.Allow = append(cfg.Allow, ids...)
	}
	if len(tlsProblems) > 0 && len(cfg.Allow) > 0 {
		cfg.Allow = nil // reported as the TLS problem, not once more as allow
	}
	gossip, gossipProblems := s.Gossip.Config()
	if len(gossipProblems) == 0 {
		cfg.Gossip = gossip
	}
	problems = append(problems, gossipProblems...)
	if s.Quorum != "" {
		rule, err := coord.ParseQuorumRule(s.Quorum)
		switch {
		case r.IsSet("expect"):
			problems = append(problems, errors.New("quorum and expect: give one (expect counts handshakes, quorum counts live cluster members)"))
		case err != nil:
			problems = append(problems, fmt.Errorf("quorum: %v", err))
		case !s.Gossip.Enabled():
			problems = append(problems, fmt.Errorf("quorum %s counts gossip members: give --gossip-bind (the address subscribers --join), or use --expect", s.Quorum))
		default:
			cfg.Quorum, cfg.Expect = rule, 0
		}
	}
	if !s.Stdin {
		cfg.Topics = s.Topics // announced to the cluster; --stdin may publish any topic
	}
	if s.ID != "" {
		id, err := envelope.ParseID(s.ID)
		if err != nil {
			problems = append(problems, fmt.Errorf("id: %v", err))
		}
		cfg.ID = id
	} else if s.DataDir == "" {
		cfg.ID = stableID(cfg.Bind)
	} // with --data-dir, the directory keeps the id
	if len(s.Topics) == 0 {
		problems = append(problems, errors.New("topics: at least one topic is needed"))
	}
	for _, t := range s.Topics {
		if err := envelope.CheckTopic([]byte(t), envelope.KindData, envelope.Limits{}); err != nil {
			problems = append(problems, fmt.Errorf("topics: %v", err))
		}
	}
	if err := cli.CheckMetricsAddr(s.MetricsAddr); err != nil {
		problems = append(problems, err)
	}
	if s.Size > cfg.MaxPayload {
		problems = append(problems, fmt.Errorf("size: %d exceeds the %d-byte payload limit", s.Size, cfg.MaxPayload))
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, cli.SplitLines(err)...)
	}
	if len(problems) > 0 {
		return options{}, &cli.UsageError{Err: errors.Join(problems...)}
	}
	return options{
		pub: cfg, count: s.Count, payload: []byte(s.Payload), size: s.Size,
		topics: s.Topics, rate: s.Rate, stdin: s.Stdin, drain: s.DrainTimeout, metrics: s.MetricsAddr,
		compat: s.Compat == "zguide",
	}, nil
}

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
