package settings

import (
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
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
	Serving         `mapstructure:",squash"`
	MaxTopics       int           `mapstructure:"max-topics" unit:"topics" help:"topics that may be published on; more are refused"`
	MaxBatchRecords int           `mapstructure:"max-batch-records" unit:"records" help:"records per batched message (0: up to 65535; 1: no batching)"`
	Linger          time.Duration `mapstructure:"linger" help:"wait this long for more records before sending a batch (0: send at once)"`
	Count           int           `mapstructure:"count" unit:"messages" help:"messages to publish (ignored with --stdin)"`
	Payload         string        `mapstructure:"payload" help:"payload of every message"`
	Size            cli.Bytes     `mapstructure:"size" unit:"bytes" help:"random payload of this many bytes instead of --payload (0: use --payload)"`
	Topics          []string      `mapstructure:"topics" help:"topics, published round-robin (comma-separated or repeated)"`
	Rate            float64       `mapstructure:"rate" unit:"messages/s" help:"messages per second (0: as fast as possible)"`
	Stdin           bool          `mapstructure:"stdin" help:"publish each input line: topic<TAB>payload, or payload on the first topic"`
	ID              string        `mapstructure:"id" help:"publisher id, 32 hex digits (default: derived from host and --bind, so restarts keep it)"`
	Quorum          string        `mapstructure:"quorum" help:"with gossip: all, majority or N live subscriber members whose topics match (instead of --expect)"`
	Settle          time.Duration `mapstructure:"settle" help:"with --quorum: let the cluster gossip its members this long before judging the quorum"`
	QuorumLost      QuorumLost    `mapstructure:"quorum-lost" help:"with --quorum, when the quorum is lost after start: continue, or pause publishing until it is back"`
	MetricsAddr     string        `mapstructure:"metrics-addr" help:"serve Prometheus metrics (/metrics) and health (/healthz, /readyz: 200 while publishing with the quorum) on this host:port (no host: loopback; 0.0.0.0 for every interface, warned about; empty: off)"`
	Pprof           string        `mapstructure:"pprof" help:"serve Go's profiler (/debug/pprof/) on this loopback host:port, e.g. 127.0.0.1:6060 (empty: off)"`
	Compat          Compat        `mapstructure:"compat" help:"zguide: serve the zguide's plain syncsub (empty sync request and reply, one-frame updates, a bare END; no sequence numbers, no repair)"`
	CheckConfig     bool          `mapstructure:"check-config" only:"flag" help:"print the resolved settings and where each came from, and exit (2 if any is bad)"`
	TLS             cli.TLS       `mapstructure:",squash"`
	Gossip          cli.Gossip    `mapstructure:",squash"`
	Common          cli.Common    `mapstructure:",squash"`
}

// DefaultPublisher returns syncpub's defaults: the zguide's ports and job.
func DefaultPublisher() Publisher {
	return Publisher{
		Serving:    DefaultServing(),
		MaxTopics:  16_384,
		Count:      1_000_000,
		Payload:    "Rhubarb",
		Topics:     []string{"update"},
		Settle:     2 * time.Second,
		QuorumLost: "continue",
		Compat:     "none",
		Gossip:     cli.DefaultGossip(),
		Common:     cli.DefaultCommon(),
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
