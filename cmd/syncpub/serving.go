package main

import (
	"fmt"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/journal"
	"github.com/syncmq/syncmq/recovery"
)

// servingConfig turns the settings syncpub and the relay share into the
// publisher configuration both serve their subscribers with, adding
// every problem to c named by its flag. tlsCfg is the loaded --tls-*
// settings; tlsOK is false when loading them failed, so that --allow is
// not reported a second time for the same cause.
func servingConfig(s settings.Serving, tlsCfg *coord.TLS, tlsOK bool, c *cli.Checks) coord.PublisherConfig {
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = s.Bind, s.SyncBind, s.RecoveryBind
	cfg.TLS = tlsCfg

	cfg.History.MaxMessages = s.HistoryMessages
	if s.RecoveryBind == "" || s.HistoryMessages == 0 || c.SizeAtLeast("history-bytes", s.HistoryBytes, recovery.MinHistoryBytes) {
		cfg.History.MaxBytes = int64(s.HistoryBytes)
	}
	cfg.History.MaxTopicBytes = int64(s.HistoryTopic)
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
	if c.AtLeast("repair-window", s.RepairWindow, coord.MinRepairWindow) {
		cfg.RepairWindow = s.RepairWindow
	}
	if c.SizeAtLeast("recovery-bytes-rate", s.RecoveryRate, 1) {
		cfg.RecoveryLimit.GlobalBytesRate, cfg.RecoveryLimit.GlobalBytesBurst = float64(s.RecoveryRate), int64(s.RecoveryRate)
	}
	if c.SizeAtLeast("recovery-host-bytes-rate", s.RecoveryHost, 1) {
		cfg.RecoveryLimit.HostBytesRate, cfg.RecoveryLimit.HostBytesBurst = float64(s.RecoveryHost), int64(s.RecoveryHost)
	}

	cfg.MaxSubscribers = s.MaxSubscribers
	cfg.MaxSubscribersPerIP = s.MaxSubsPerIP
	cfg.Wire.MaxConnsPerIP = s.ConnsPerIP
	cfg.Wire.MaxPendingPerIP = s.HandshakesPerIP
	cfg.Wire.MaxSubscriptionBytes, cfg.Wire.SubscriptionBudget = s.MaxSubBytes.Int(), s.SubBudget.Int()
	if c.AtLeast("join-timeout", s.JoinTimeout, coord.MinJoinTimeout) {
		cfg.JoinTimeout = s.JoinTimeout
	}

	cfg.Expect = s.Expect
	cfg.QuorumTimeout = s.QuorumTimeout
	cfg.QuorumPolicy, _ = coord.ParseQuorumPolicy(string(s.QuorumPolicy)) // a choice: already checked
	c.AtLeast("drain-timeout", s.DrainTimeout, minDrainTimeout)
	if c.AtLeast("heartbeat", s.Heartbeat, coord.MinInterval) {
		cfg.HeartbeatInterval = s.Heartbeat
	}
	if c.AtLeast("slow-timeout", s.SlowTimeout, coord.MinSlowTimeout) {
		cfg.Wire.SlowTimeout = s.SlowTimeout
	}
	cfg.SlowPolicy, _ = coord.ParseSlowPolicy(string(s.SlowPolicy)) // a choice: already checked
	if s.LingerAfterEnd < 0 {
		c.Add(fmt.Errorf("linger-after-end: %v is negative", s.LingerAfterEnd))
	}
	cfg.LingerAfterEnd = s.LingerAfterEnd
	queueOK := c.SizeAtLeast("queue-bytes", s.QueueBytes, coord.MinQueueBytes)
	maxOK := c.SizeAtLeast("max-queue-bytes", s.MaxQueueBytes, max(coord.MinQueueBytes, s.QueueBytes), "queue-bytes")
	if queueOK && maxOK {
		cfg.Wire.QueueBytes, cfg.Wire.MaxQueueBytes = s.QueueBytes.Int(), s.MaxQueueBytes.Int()
	}

	cfg.Allow = append(cfg.Allow, s.Allow...)
	if s.AllowFile != "" {
		ids, err := cli.ReadAllowFile(s.AllowFile)
		c.Add(err)
		cfg.Allow = append(cfg.Allow, ids...)
	}
	if !tlsOK {
		cfg.Allow = nil // reported as the TLS problem, not once more as allow
	}
	return cfg
}
