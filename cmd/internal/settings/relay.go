package settings

import (
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/recovery"
	"github.com/syncmq/syncmq/relay"
)

// Relay is `syncpub relay`'s configuration: upstream it subscribes as
// syncsub does, downstream it publishes as syncpub does. The TLS
// settings serve both sides: the certificate is the relay's identity
// upstream and its server certificate downstream.
type Relay struct {
	Connect          string        `mapstructure:"connect" help:"upstream publisher's PUB endpoint (the origin, or another relay)"`
	Sync             string        `mapstructure:"sync" help:"upstream publisher's sync endpoint"`
	Recovery         string        `mapstructure:"recovery" help:"upstream publisher's recovery endpoint (default: the one its ACK names, on the --connect host)"`
	Subscribe        []string      `mapstructure:"subscribe" help:"topic prefixes to relay (comma-separated or repeated; default: every topic)"`
	ID               string        `mapstructure:"id" help:"the relay's subscriber id upstream (default: with TLS, the identity of --tls-cert; else random)"`
	StartAt          string        `mapstructure:"start-at" help:"upstream start: earliest relays what the upstream publisher still retains before the join; join: from the handshake on; N: from sequence N"`
	RepairTimeout    time.Duration `mapstructure:"repair-timeout" help:"give an upstream gap up as lost (and forward the loss) when its repair makes no progress this long"`
	PublisherTimeout time.Duration `mapstructure:"publisher-timeout" help:"end the relay when nothing arrived from upstream for this long (exit 4)"`
	MaxHeldBytes     cli.Bytes     `mapstructure:"max-held-bytes" unit:"bytes" help:"live messages held per topic while an upstream gap is repaired"`
	ProbeTimeout     time.Duration `mapstructure:"probe-timeout" help:"wait this long for the upstream publisher's first HELLO, which names the id and epoch the relay serves (again after the upstream publisher restarted)"`
	Serving          `mapstructure:",squash"`
	EndGrace         time.Duration `mapstructure:"end-grace" help:"after the upstream END, keep serving this long before sending END downstream, so subscribers failing over from a relay that died join here and repair (keep it above syncsub's --failover-after; 0: end at once)"`
	MetricsAddr      string        `mapstructure:"metrics-addr" help:"serve Prometheus metrics (/metrics: the relay's, the downstream publisher's and the upstream subscriber's) and health (/healthz, /readyz: 200 while joined upstream and publishing downstream) on this host:port (no host: loopback; empty: off)"`
	CheckConfig      bool          `mapstructure:"check-config" only:"flag" help:"print the resolved settings and where each came from, and exit (2 if any is bad)"`
	TLS              cli.TLS       `mapstructure:",squash"`
	Common           cli.Common    `mapstructure:",squash"`
}

// DefaultRelay returns the relay's defaults: the zguide's ports
// downstream, an origin on localhost upstream.
func DefaultRelay() Relay {
	return Relay{
		Serving:          DefaultServing(),
		Connect:          "tcp://localhost:5561",
		Sync:             "tcp://localhost:5562",
		StartAt:          "earliest",
		RepairTimeout:    5 * time.Second,
		PublisherTimeout: coord.DefaultPublisherTimeout,
		MaxHeldBytes:     recovery.DefaultMaxHeldBytes,
		ProbeTimeout:     relay.DefaultProbeTimeout,
		EndGrace:         3 * time.Second,
		Common:           cli.DefaultCommon(),
	}
}

// RelayExitCodes says what `syncpub relay`'s exit codes mean.
var RelayExitCodes = []cli.ExitCode{
	{Code: cli.ExitOK, Meaning: "upstream ended cleanly (END, nothing lost) and every downstream subscriber that joined confirmed (BYE) it got everything; only then did the relay confirm upstream"},
	{Code: cli.ExitFailed, Meaning: "records were lost upstream (forwarded downstream with their cause), a downstream subscriber did not confirm within --drain-timeout or confirmed losses, or the upstream publisher restarted; the relay's BYE upstream reported it"},
	{Code: cli.ExitUsage, Meaning: usageMeaning},
	{Code: cli.ExitQuorumFailed, Meaning: "the downstream quorum was not reached within --quorum-timeout under --quorum-policy fail, or the upstream publisher's quorum failed"},
	{Code: cli.ExitPublisherGone, Meaning: "the upstream publisher disappeared without END, or never sent a HELLO within --probe-timeout"},
	{Code: cli.ExitInterrupted, Meaning: "interrupted by SIGINT or SIGTERM before the job completed"},
}
