package settings

import (
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/recovery"
)

// Serving is what syncpub and the relay share as publishers: the
// endpoints subscribers reach, the history they repair from, the limits
// on what a peer can make the process hold, and the policies for slow and
// late subscribers. One struct, so that a limit added for syncpub's ports
// guards the relay's too.
type Serving struct {
	Bind            string        `mapstructure:"bind" help:"PUB endpoint to bind"`
	SyncBind        string        `mapstructure:"sync-bind" help:"sync (handshake) endpoint to bind"`
	RecoveryBind    string        `mapstructure:"recovery-bind" help:"recovery endpoint to bind (empty: no recovery)"`
	HistoryMessages int           `mapstructure:"history-messages" unit:"messages" help:"messages retained per topic for recovery (0: no recovery history)"`
	HistoryBytes    cli.Bytes     `mapstructure:"history-bytes" unit:"bytes" help:"memory the retained history may use, all topics together"`
	HistoryTopic    cli.Bytes     `mapstructure:"history-topic-bytes" unit:"bytes" help:"what one topic's history may use, in memory or with --data-dir on disk (0: no per-topic limit below --history-bytes or --data-bytes)"`
	DataDir         string        `mapstructure:"data-dir" help:"keep the history on disk in this directory (a journal), across restarts and crashes (empty: memory only)"`
	Fsync           Fsync         `mapstructure:"fsync" help:"with --data-dir: sync the journal every --fsync-interval, after every batch (always), or leave it to the OS (never)"`
	FsyncInterval   time.Duration `mapstructure:"fsync-interval" help:"with --fsync interval: how often the journal is synced; a power loss loses at most this much"`
	DataBytes       cli.Bytes     `mapstructure:"data-bytes" unit:"bytes" help:"with --data-dir: disk the journal may use, all topics and epochs together"`
	RetentionAge    time.Duration `mapstructure:"retention-age" help:"with --data-dir: drop batches older than this (0: no age limit)"`
	RepairWindow    time.Duration `mapstructure:"repair-window" help:"after END, wait this long for a subscriber that joined, has not said BYE and has no connection, before giving it up (one cut as a slow consumer is waited for until --drain-timeout: it comes back once it has read what it was sent); announced in the ACK"`
	RecoveryRate    cli.Bytes     `mapstructure:"recovery-bytes-rate" unit:"bytes/s" help:"replay bandwidth of all subscribers together"`
	RecoveryHost    cli.Bytes     `mapstructure:"recovery-host-bytes-rate" unit:"bytes/s" help:"replay bandwidth of one subscriber host"`
	MaxSubscribers  int           `mapstructure:"max-subscribers" unit:"subscribers" help:"distinct subscriber ids remembered; a READY beyond is refused (full); an id whose data connection leaves before the start gives its place up"`
	MaxSubsPerIP    int           `mapstructure:"max-subscribers-per-ip" unit:"subscribers" help:"on tcp://, subscriber ids remembered from one source address; a READY for a new id beyond is refused (full)"`
	ConnsPerIP      int           `mapstructure:"max-conns-per-ip" unit:"connections" help:"connections from one source address on each endpoint (data, sync, recovery); a new one beyond closes one of that address's: the oldest that has not joined (data), the one idle the longest (sync, recovery)"`
	HandshakesPerIP int           `mapstructure:"max-handshakes-per-ip" unit:"connections" help:"data connections of one source address in their handshake at once; a new one closes that address's oldest"`
	MaxSubBytes     cli.Bytes     `mapstructure:"max-subscription-bytes" unit:"bytes" help:"what one data connection's subscriptions may take (prefix bytes + 32 each); the connection that takes more is closed"`
	SubBudget       cli.Bytes     `mapstructure:"subscription-budget" unit:"bytes" help:"what the subscriptions of all data connections may take together; beyond it, the largest connection that has not joined is closed"`
	JoinTimeout     time.Duration `mapstructure:"join-timeout" help:"close a data connection that has not completed the sync handshake after this long"`
	Expect          int           `mapstructure:"expect" unit:"subscribers" help:"subscribers that must join before publishing (0: publish at once)"`
	QuorumTimeout   time.Duration `mapstructure:"quorum-timeout" help:"give up waiting for quorum after this long (0: wait forever)"`
	QuorumPolicy    QuorumPolicy  `mapstructure:"quorum-policy" help:"at quorum timeout: fail (exit 3), or proceed with those present"`
	DrainTimeout    time.Duration `mapstructure:"drain-timeout" help:"how long to wait at the end for subscribers to take what was published"`
	Heartbeat       time.Duration `mapstructure:"heartbeat" help:"heartbeat interval (tail-loss detection)"`
	SlowTimeout     time.Duration `mapstructure:"slow-timeout" help:"disconnect a subscriber on the live stream that takes no data for this long (under --slow-policy catch-up, one fed from the history is not)"`
	SlowPolicy      SlowPolicy    `mapstructure:"slow-policy" help:"a subscriber slower than the publisher: catch-up (taken off the live stream past twice --queue-bytes and fed from the history at its own pace, then back on it), wait (lockstep: the slowest sets everyone's pace), or cut (disconnected past --max-queue-bytes, as NATS core)"`
	LingerAfterEnd  time.Duration `mapstructure:"linger-after-end" help:"after END, keep serving the history this long for subscribers that join late, even when nobody is waited for; --drain-timeout counts after it (0: exit as soon as every subscriber that joined confirmed)"`
	QueueBytes      cli.Bytes     `mapstructure:"queue-bytes" unit:"bytes" help:"per-subscriber send queue: with --slow-policy catch-up, a subscriber more than twice this behind is fed from the history, its queue topped up to this; with wait, the queue above which the publisher waits"`
	MaxQueueBytes   cli.Bytes     `mapstructure:"max-queue-bytes" unit:"bytes" help:"per-subscriber send queue above which a subscriber is disconnected as slow"`
	Allow           []string      `mapstructure:"allow" help:"with TLS: certificate identities that may subscribe, count toward the quorum and fetch history (comma-separated or repeated; default: any the CA signed)"`
	AllowFile       string        `mapstructure:"allow-file" help:"with TLS: file of identities, one per line (# comments), added to --allow"`
}

// DefaultServing returns the defaults both publishers serve with: the
// zguide's ports.
func DefaultServing() Serving {
	return Serving{
		Bind:            "tcp://*:5561",
		SyncBind:        "tcp://*:5562",
		RecoveryBind:    "tcp://*:5563",
		HistoryMessages: 100_000,
		HistoryBytes:    128 << 20,
		Fsync:           "interval",
		FsyncInterval:   time.Second,
		DataBytes:       1 << 30,
		RepairWindow:    coord.DefaultRepairWindow,
		RecoveryRate:    recovery.DefaultGlobalBytesRate,
		RecoveryHost:    recovery.DefaultHostBytesRate,
		MaxSubscribers:  4096,
		MaxSubsPerIP:    256,
		ConnsPerIP:      256,
		HandshakesPerIP: 64,
		MaxSubBytes:     64 << 10,
		SubBudget:       16 << 20,
		JoinTimeout:     30 * time.Second,
		Expect:          1,
		QuorumPolicy:    "fail",
		DrainTimeout:    30 * time.Second,
		Heartbeat:       time.Second,
		SlowTimeout:     500 * time.Millisecond,
		SlowPolicy:      "catch-up",
		QueueBytes:      4 << 20,
		MaxQueueBytes:   64 << 20,
	}
}
