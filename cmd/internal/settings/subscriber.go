package settings

import (
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/recovery"
)

// Output is syncsub's output format.
type Output string

// Choices lists the formats.
func (Output) Choices() []string { return []string{"text", "json", "runs", "count"} }

// Subscriber is syncsub's configuration.
type Subscriber struct {
	Connect          string        `mapstructure:"connect" help:"publisher's PUB endpoint; several, comma-separated (as many as --sync): relays of one stream (syncpub relay), used one at a time in order, the next when the current one is gone for --failover-after"`
	Sync             string        `mapstructure:"sync" help:"publisher's sync endpoint; several, comma-separated: one per --connect"`
	FailoverAfter    time.Duration `mapstructure:"failover-after" help:"with several --connect: move to the next one when the current one has had no connection for this long (doubled after each move that brings none, up to 8 times; a connection resets it); keep it well below --publisher-timeout"`
	Recovery         string        `mapstructure:"recovery" help:"publisher's recovery endpoint (default: the one its ACK names, on the --connect host)"`
	StartAt          string        `mapstructure:"start-at" help:"join: deliver from the handshake on; earliest: first replay what the publisher still retains; N: from sequence N of every topic"`
	StateDir         string        `mapstructure:"state-dir" help:"checkpoint what was delivered here, and resume from it after a restart (empty: no state)"`
	RepairTimeout    time.Duration `mapstructure:"repair-timeout" help:"give a gap up as lost when its repair makes no progress this long"`
	PublisherTimeout time.Duration `mapstructure:"publisher-timeout" help:"end a publisher nothing arrived from for this long (exit 4, its unknown tail reported lost)"`
	ConnectTimeout   time.Duration `mapstructure:"connect-timeout" help:"exit 5 when no publisher has joined (connected and answered the handshake) this long after the start (0: wait until stopped)"`
	MaxHeldBytes     cli.Bytes     `mapstructure:"max-held-bytes" unit:"bytes" help:"live messages held per topic while a gap is repaired"`
	Subscribe        []string      `mapstructure:"subscribe" help:"topic prefixes to subscribe to (comma-separated or repeated; default: every topic)"`
	Output           Output        `mapstructure:"output" help:"text: topic seq payload per line, events on stderr; json: one typed object per line (messages, events, summary); runs: as json, with each stream's consecutive messages folded into one run line (from, to, count), for audits of high volume; count: the zguide summary at the end"`
	ID               string        `mapstructure:"id" help:"subscriber id in the quorum (default: with TLS, the identity of --tls-cert, which a publisher with TLS requires; else random)"`
	HandshakeTimeout time.Duration `mapstructure:"handshake-timeout" help:"deadline of one READY attempt"`
	ExitOnEnd        bool          `mapstructure:"exit-on-end" help:"exit when every publisher has sent END"`
	MetricsAddr      string        `mapstructure:"metrics-addr" help:"serve Prometheus metrics (/metrics) and health (/healthz, /readyz: 200 while joined and caught up) on this host:port (no host: loopback; 0.0.0.0 for every interface, warned about; empty: off)"`
	Pprof            string        `mapstructure:"pprof" help:"serve Go's profiler (/debug/pprof/) on this loopback host:port, e.g. 127.0.0.1:6061 (empty: off)"`
	Compat           Compat        `mapstructure:"compat" help:"zguide: talk to the zguide's plain syncpub (empty sync request, counts one-frame updates until END; no sequence numbers, no gap detection)"`
	CheckConfig      bool          `mapstructure:"check-config" only:"flag" help:"print the resolved settings and where each came from, and exit (2 if any is bad)"`
	TLS              cli.TLS       `mapstructure:",squash"`
	Gossip           cli.Gossip    `mapstructure:",squash"`
	Common           cli.Common    `mapstructure:",squash"`
}

// DefaultSubscriber returns syncsub's defaults: the zguide's endpoints.
func DefaultSubscriber() Subscriber {
	return Subscriber{
		Connect:          "tcp://localhost:5561",
		Sync:             "tcp://localhost:5562",
		FailoverAfter:    2 * time.Second,
		StartAt:          "join",
		RepairTimeout:    5 * time.Second,
		MaxHeldBytes:     recovery.DefaultMaxHeldBytes,
		PublisherTimeout: coord.DefaultPublisherTimeout,
		ConnectTimeout:   coord.DefaultConnectTimeout,
		Output:           "text",
		HandshakeTimeout: time.Second,
		ExitOnEnd:        true,
		Compat:           "none",
		Gossip:           cli.DefaultGossip(),
		Common:           cli.DefaultCommon(),
	}
}

// Diagnose is `syncsub diagnose`'s configuration.
type Diagnose struct {
	Connect   string        `mapstructure:"connect" help:"publisher's PUB endpoint"`
	Sync      string        `mapstructure:"sync" help:"publisher's sync endpoint"`
	Recovery  string        `mapstructure:"recovery" help:"publisher's recovery endpoint (default: from the ACK)"`
	Subscribe []string      `mapstructure:"subscribe" help:"topic prefixes (comma-separated or repeated; default: every topic)"`
	Duration  time.Duration `mapstructure:"duration" help:"how long to watch the stream (it stops earlier at END)"`
	TLS       cli.TLS       `mapstructure:",squash"`
	Gossip    cli.Gossip    `mapstructure:",squash"`
	Common    cli.Common    `mapstructure:",squash"`
}

// DefaultDiagnose returns diagnose's defaults.
func DefaultDiagnose() Diagnose {
	return Diagnose{
		Connect: "tcp://localhost:5561", Sync: "tcp://localhost:5562", Duration: 5 * time.Second,
		Gossip: cli.DefaultGossip(), Common: cli.DefaultCommon(),
	}
}
