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
	"github.com/syncmq/syncmq/recovery"
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
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = s.Bind, s.SyncBind, s.RecoveryBind
	cfg.History.MaxMessages = s.HistoryMessages
	if s.RecoveryBind == "" || s.HistoryMessages == 0 || c.SizeAtLeast("history-bytes", s.HistoryBytes, recovery.MinHistoryBytes) {
		cfg.History.MaxBytes = int64(s.HistoryBytes)
	}
	cfg.History.MaxTopicBytes = int64(s.HistoryTopic)
	if c.SizeAtLeast("recovery-bytes-rate", s.RecoveryRate, 1) {
		cfg.RecoveryLimit.GlobalBytesRate, cfg.RecoveryLimit.GlobalBytesBurst = float64(s.RecoveryRate), int64(s.RecoveryRate)
	}
	if c.SizeAtLeast("recovery-host-bytes-rate", s.RecoveryHost, 1) {
		cfg.RecoveryLimit.HostBytesRate, cfg.RecoveryLimit.HostBytesBurst = float64(s.RecoveryHost), int64(s.RecoveryHost)
	}
	cfg.MaxTopics, cfg.MaxSubscribers = s.MaxTopics, s.MaxSubscribers
	if c.AtLeast("join-timeout", s.JoinTimeout, coord.MinJoinTimeout) {
		cfg.JoinTimeout = s.JoinTimeout
	}
	if c.AtLeast("repair-window", s.RepairWindow, coord.MinRepairWindow) {
		cfg.RepairWindow = s.RepairWindow
	}
	if s.DataDir != "" {
		cfg.DataDir = s.DataDir
		cfg.Journal = journal.DefaultConfig()
		cfg.Journal.Sync = map[settings.Fsync]journal.SyncMode{"interval": journal.SyncInterval, "always": journal.SyncAlways, "never": journal.SyncNever}[s.Fsync]
		if c.AtLeast("fsync-interval", s.FsyncInterval, minFsyncInterval) {
			cfg.Journal.SyncInterval = s.FsyncInterval
		}
		if c.SizeAtLeast("data-bytes", s.DataBytes, 2*journal.DefaultSegmentBytes) {
			cfg.Journal.MaxBytes = int64(s.DataBytes)
		}
		cfg.Journal.Retention = journal.Retention{MaxMessages: int64(s.HistoryMessages), MaxBytes: int64(s.HistoryTopic), MaxAge: s.RetentionAge}
	}
	cfg.MaxBatchRecords = s.MaxBatchRecords
	cfg.Linger = s.Linger
	cfg.Expect = s.Expect
	cfg.QuorumTimeout = s.QuorumTimeout
	cfg.QuorumPolicy, _ = coord.ParseQuorumPolicy(string(s.QuorumPolicy)) // a choice: already checked
	cfg.QuorumLost, _ = coord.ParseLostPolicy(string(s.QuorumLost))
	if c.AtLeast("heartbeat", s.Heartbeat, coord.MinInterval) {
		cfg.HeartbeatInterval = s.Heartbeat
	}
	if c.AtLeast("slow-timeout", s.SlowTimeout, coord.MinSlowTimeout) {
		cfg.Wire.SlowTimeout = s.SlowTimeout
	}
	queueOK := c.SizeAtLeast("queue-bytes", s.QueueBytes, coord.MinQueueBytes)
	maxOK := c.SizeAtLeast("max-queue-bytes", s.MaxQueueBytes, max(coord.MinQueueBytes, s.QueueBytes), "queue-bytes")
	if queueOK && maxOK {
		cfg.Wire.QueueBytes, cfg.Wire.MaxQueueBytes = s.QueueBytes.Int(), s.MaxQueueBytes.Int()
	}
	c.AtLeast("drain-timeout", s.DrainTimeout, minDrainTimeout)
	cfg.SlowPolicy, _ = coord.ParseSlowPolicy(string(s.SlowPolicy)) // a choice: already checked
	if s.LingerAfterEnd < 0 {
		c.Add(fmt.Errorf("linger-after-end: %v is negative", s.LingerAfterEnd))
	}
	cfg.LingerAfterEnd = s.LingerAfterEnd
	cfg.MaxSubscribersPerIP = s.MaxSubsPerIP
	cfg.Wire.MaxPendingPerIP = s.HandshakesPerIP
	cfg.Wire.MaxConnsPerIP = s.ConnsPerIP
	cfg.Wire.MaxSubscriptionBytes, cfg.Wire.SubscriptionBudget = s.MaxSubBytes.Int(), s.SubBudget.Int()
	cfg.Settle = s.Settle
	tlsCfg, tlsProblems := s.TLS.Load()
	cfg.TLS = tlsCfg
	c.Add(tlsProblems...)
	cfg.Allow = append(cfg.Allow, s.Allow...)
	if s.AllowFile != "" {
		ids, err := cli.ReadAllowFile(s.AllowFile)
		c.Add(err)
		cfg.Allow = append(cfg.Allow, ids...)
	}
	if len(tlsProblems) > 0 && len(cfg.Allow) > 0 {
		cfg.Allow = nil // reported as the TLS problem, not once more as allow
	}
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
