package settings

import (
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/recovery"
)

// QuorumPolicy is what syncpub does when --quorum-timeout passes.
type QuorumPolicy string

// Choices lists the policies.
func (QuorumPolicy) Choices() []string { return []string{"fail", "proceed"} }

// QuorumLost is what syncpub does when a membership quorum is lost.
type QuorumLost string

// Choices lists the policies.
func (QuorumLost) Choices() []string { return []string{"continue", "pause"} }

// SlowPolicy is what the publisher does with a subscriber slower than it.
type SlowPolicy string

// Choices lists the policies.
func (SlowPolicy) Choices() []string { return []string{"catch-up", "wait", "cut"} }

// Fsync is when the journal syncs to disk.
type Fsync string

// Choices lists the policies.
func (Fsync) Choices() []string { return []string{"interval", "always", "never"} }

// Publisher is syncpub's configuration.
type Publisher struct {
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
	RepairWindow    time.Duration `mapstructure:"repair-window" help:"after END, wait this long for a subscriber that joined, has not said BYE and has no connection, before giving it up; announced in the ACK"`
	RecoveryRate    cli.Bytes     `mapstructure:"recovery-bytes-rate" unit:"bytes/s" help:"replay bandwidth of all subscribers together"`
	RecoveryHost    cli.Bytes     `mapstructure:"recovery-host-bytes-rate" unit:"bytes/s" help:"replay bandwidth of one subscriber host"`
	MaxTopics       int           `mapstructure:"max-topics" unit:"topics" help:"topics that may be published on; more are refused"`
	MaxSubscribers  int           `mapstructure:"max-subscribers" unit:"subscribers" help:"distinct subscriber ids remembered; a READY beyond is refused (full); an id whose data connection leaves before the start gives its place up"`
	MaxSubsPerIP    int           `mapstructure:"max-subscribers-per-ip" unit:"subscribers" help:"on tcp://, subscriber ids remembered from one source address; a READY for a new id beyond is refused (full)"`
	ConnsPerIP      int           `mapstructure:"max-conns-per-ip" unit:"connections" help:"connections from one source address on each endpoint (data, sync, recovery); a new one beyond closes one of that address's: the oldest that has not joined (data), the one idle the longest (sync, recovery)"`
	HandshakesPerIP int           `mapstructure:"max-handshakes-per-ip" unit:"connections" help:"data connections of one source address in their handshake at once; a new one closes that address's oldest"`
	MaxSubBytes     cli.Bytes     `mapstructure:"max-subscription-bytes" unit:"bytes" help:"what one data connection's subscriptions may take (prefix bytes + 32 each); the connection that takes more is closed"`
	SubBudget       cli.Bytes     `mapstructure:"subscription-budget" unit:"bytes" help:"what the subscriptions of all data connections may take together; beyond it, the largest connection that has not joined is closed"`
	JoinTimeout     time.Duration `mapstructure:"join-timeout" help:"close a data connection that has not completed the sync handshake after this long"`
	MaxBatchRecords int           `mapstructure:"max-batch-records" unit:"records" help:"records per batched message (0: up to 65535; 1: no batching)"`
	Linger          time.Duration `mapstructure:"linger" help:"wait this long for more records before sending a batch (0: send at once)"`
	Expect          int           `mapstructure:"expect" unit:"subscribers" help:"subscribers that must join before publishing (0: publish at once)"`
	Count           int           `mapstructure:"count" unit:"messages" help:"messages to publish (ignored with --stdin)"`
	Payload         string        `mapstructure:"payload" help:"payload of every message"`
	Size            cli.Bytes     `mapstructure:"size" unit:"bytes" help:"random payload of this many bytes instead of --payload (0: use --payload)"`
	Topics          []string      `mapstructure:"topics" help:"topics, published round-robin (comma-separated or repeated)"`
	Rate            float64       `mapstructure:"rate" unit:"messages/s" help:"messages per second (0: as fast as possible)"`
	Stdin           bool          `mapstructure:"stdin" help:"publish each input line: topic<TAB>payload, or payload on the first topic"`
	QuorumTimeout   time.Duration `mapstructure:"quorum-timeout" help:"give up waiting for quorum after this long (0: wait forever)"`
	QuorumPolicy    QuorumPolicy  `mapstructure:"quorum-policy" help:"at quorum timeout: fail (exit 3), or proceed with those present"`
	DrainTimeout    time.Duration `mapstructure:"drain-timeout" help:"how long to wait at the end for subscribers to take what was published"`
	ID              string        `mapstructure:"id" help:"publisher id, 32 hex digits (default: derived from host and --bind, so restarts keep it)"`
	Heartbeat       time.Duration `mapstructure:"heartbeat" help:"heartbeat interval (tail-loss detection)"`
	SlowTimeout     time.Duration `mapstructure:"slow-timeout" help:"disconnect a subscriber on the live stream that takes no data for this long (under --slow-policy catch-up, one fed from the history is not)"`
	SlowPolicy      SlowPolicy    `mapstructure:"slow-policy" help:"a subscriber slower than the publisher: catch-up (taken off the live stream past twice --queue-bytes and fed from the history at its own pace, then back on it), wait (lockstep: the slowest sets everyone's pace), or cut (disconnected past --max-queue-bytes, as NATS core)"`
	LingerAfterEnd  time.Duration `mapstructure:"linger-after-end" help:"after END, keep serving the history this long for subscribers that join late, even when nobody is waited for; --drain-timeout counts after it (0: exit as soon as every subscriber that joined confirmed)"`
	QueueBytes      cli.Bytes     `mapstructure:"queue-bytes" unit:"bytes" help:"per-subscriber send queue: with --slow-policy catch-up, a subscriber more than twice this behind is fed from the history, its queue topped up to this; with wait, the queue above which the publisher waits"`
	MaxQueueBytes   cli.Bytes     `mapstructure:"max-queue-bytes" unit:"bytes" help:"per-subscriber send queue above which a subscriber is disconnected as slow"`
	Quorum          string        `mapstructure:"quorum" help:"with gossip: all, majority or N live subscriber members whose topics match (instead of --expect)"`
	Settle          time.Duration `mapstructure:"settle" help:"with --quorum: let the cluster gossip its members this long before judging the quorum"`
	QuorumLost      QuorumLost    `mapstructure:"quorum-lost" help:"with --quorum, when the quorum is lost after start: continue, or pause publishing until it is back"`
	MetricsAddr     string        `mapstructure:"metrics-addr" help:"serve Prometheus metrics (/metrics) and health (/healthz, /readyz: 200 while publishing with the quorum) on this host:port (no host: loopback; 0.0.0.0 for every interface, warned about; empty: off)"`
	Pprof           string        `mapstructure:"pprof" help:"serve Go's profiler (/debug/pprof/) on this loopback host:port, e.g. 127.0.0.1:6060 (empty: off)"`
	Compat          Compat        `mapstructure:"compat" help:"zguide: serve the zguide's plain syncsub (empty sync request and reply, one-frame updates, a bare END; no sequence numbers, no repair)"`
	Allow           []string      `mapstructure:"allow" help:"with TLS: certificate identities that may subscribe, count toward the quorum and fetch history (comma-separated or repeated; default: any the CA signed)"`
	AllowFile       string        `mapstructure:"allow-file" help:"with TLS: file of identities, one per line (# comments), added to --allow"`
	CheckConfig     bool          `mapstructure:"check-config" only:"flag" help:"print the resolved settings and where each came from, and exit (2 if any is bad)"`
	TLS             cli.TLS       `mapstructure:",squash"`
	Gossip          cli.Gossip    `mapstructure:",squash"`
	Common          cli.Common    `mapstructure:",squash"`
}

// DefaultPublisher returns syncpub's defaults: the zguide's ports and job.
func DefaultPublisher() Publisher {
	return Publisher{
		Bind:            "tcp://*:5561",
		SyncBind:        "tcp://*:5562",
		RecoveryBind:    "tcp://*:5563",
		HistoryMessages: 100_000,
		HistoryBytes:    128 << 20,
		RecoveryRate:    recovery.DefaultGlobalBytesRate,
		RecoveryHost:    recovery.DefaultHostBytesRate,
		Fsync:           "interval",
		FsyncInterval:   time.Second,
		DataBytes:       1 << 30,
		RepairWindow:    coord.DefaultRepairWindow,
		MaxTopics:       16_384,
		MaxSubscribers:  4096,
		MaxSubsPerIP:    256,
		ConnsPerIP:      256,
		HandshakesPerIP: 64,
		MaxSubBytes:     64 << 10,
		SubBudget:       16 << 20,
		JoinTimeout:     30 * time.Second,
		Expect:          1,
		Count:           1_000_000,
		Payload:         "Rhubarb",
		Topics:          []string{"update"},
		QuorumPolicy:    "fail",
		DrainTimeout:    30 * time.Second,
		Heartbeat:       time.Second,
		SlowTimeout:     500 * time.Millisecond,
		QueueBytes:      4 << 20,
		MaxQueueBytes:   64 << 20,
		SlowPolicy:      "catch-up",
		Settle:          2 * time.Second,
		QuorumLost:      "continue",
		Compat:          "none",
		Gossip:          cli.DefaultGossip(),
		Common:          cli.DefaultCommon(),
	}
}

// DemoLogLevel is the demo's log level: the others' levels, or off.
type DemoLogLevel string

// Choices lists the levels.
func (DemoLogLevel) Choices() []string { return []string{"off", "debug", "info", "warn", "error"} }

// Demo is `syncpub demo`'s configuration. Unlike the other commands it
// logs nothing unless asked: its summary is the output.
type Demo struct {
	Subscribers int           `mapstructure:"subscribers" unit:"subscribers" help:"subscribers the quorum waits for (2 to 16)"`
	Count       int           `mapstructure:"count" unit:"messages" help:"messages published in each stage (100 to 10000)"`
	Config      string        `mapstructure:"config" only:"flag" help:"YAML file with settings; keys are the flag names"`
	LogLevel    DemoLogLevel  `mapstructure:"log-level" help:"log lines at this level and above go to stderr (off: only the summary)"`
	LogFormat   cli.LogFormat `mapstructure:"log-format" help:"log line format"`
}

// DefaultDemo returns the demo's defaults.
func DefaultDemo() Demo {
	return Demo{Subscribers: 3, Count: 5000, LogLevel: "off", LogFormat: "console"}
}

// Bench is `syncpub bench`'s configuration.
type Bench struct {
	Subscribers int           `mapstructure:"subscribers" unit:"processes" help:"subscriber processes"`
	Count       int           `mapstructure:"count" unit:"messages" help:"updates to publish"`
	Payload     string        `mapstructure:"payload" help:"payload of every update"`
	Raw         bool          `mapstructure:"raw" help:"also run the raw go-zeromq baseline (slow: about 4 minutes for 10 x 1,000,000)"`
	Timeout     time.Duration `mapstructure:"timeout" help:"give up on a job after this long"`
	Syncsub     string        `mapstructure:"syncsub" help:"path of the syncsub binary (default: next to syncpub, then PATH)"`
	Libzmq      string        `mapstructure:"libzmq" help:"also run the zguide's C programs on libzmq from this folder (built by internal/libzmqbench/build.sh)"`
	TLS         bool          `mapstructure:"tls" help:"also run the syncmq job over tls:// (TLS 1.3, mutual authentication, certificates of a throwaway CA)"`
	Common      cli.Common    `mapstructure:",squash"`
}

// DefaultBench returns the benchmark's defaults: the zguide job.
func DefaultBench() Bench {
	return Bench{Subscribers: 10, Count: 1_000_000, Payload: "Rhubarb", Timeout: 10 * time.Minute, Common: cli.DefaultCommon()}
}
