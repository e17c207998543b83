// Package settings declares the configuration of syncpub, syncsub and
// their subcommands: one struct per command, whose fields are the flags
// (see cli.AddFlags). The commands resolve them with cli.Load;
// docs/configuration.md is generated from them, so the two cannot differ.
package settings

import "github.com/syncmq/syncmq/cmd/internal/cli"

// Environment variable prefixes. Subcommands share their command's.
const (
	PublisherPrefix  = "SYNCPUB"
	SubscriberPrefix = "SYNCSUB"
)

// Compat is the wire protocol syncpub and syncsub speak.
type Compat string

// Choices lists the protocols: syncmq's own, or the zguide's plain
// synchronized publisher and subscriber (docs/runbook.md says what that
// gives up).
func (Compat) Choices() []string { return []string{"none", "zguide"} }

// Command describes one command for the generated documentation.
type Command struct {
	Path     string // as typed: "syncpub", "syncpub demo"
	Prefix   string // environment variable prefix
	Summary  string
	Defaults any // pointer to the settings struct holding the defaults
}

// Commands lists every command with settings, in documentation order.
func Commands() []Command {
	pub, sub := DefaultPublisher(), DefaultSubscriber()
	demo, bench, diag, rel := DefaultDemo(), DefaultBench(), DefaultDiagnose(), DefaultRelay()
	return []Command{
		{"syncpub", PublisherPrefix, "Waits for a quorum of subscribers, publishes, sends END and drains.", &pub},
		{"syncpub demo", PublisherPrefix, "The quorum gate, a repair, a late joiner and a reported loss, in one process on loopback.", &demo},
		{"syncpub bench", PublisherPrefix, "The zguide job as processes, syncmq against go-zeromq and libzmq.", &bench},
		{"syncpub relay", PublisherPrefix, "Subscribes to a publisher and serves its stream, unchanged, to subscribers of its own.", &rel},
		{"syncsub", SubscriberPrefix, "Joins a publisher's quorum and prints what it receives until END.", &sub},
		{"syncsub diagnose", SubscriberPrefix, "Watches a stream and walks the zguide's missing-message flowchart.", &diag},
	}
}

// usageMeaning is what exit 2 means for every command: --check-config
// finds the same problems, except an address or directory that another
// process holds.
const usageMeaning = "bad flags, arguments or configuration, or an address or directory they name that cannot be used (in use, not of this host): nothing was done; every problem is listed, one per line"

// PublisherExitCodes says what syncpub's exit codes mean.
var PublisherExitCodes = []cli.ExitCode{
	{Code: cli.ExitOK, Meaning: "every subscriber that joined confirmed (BYE) it got everything up to END, nothing lost; also after SIGINT or SIGTERM once that happened"},
	{Code: cli.ExitFailed, Meaning: "the job failed: a subscriber that joined did not confirm the end within --drain-timeout (it was gone for --repair-window, or still catching up) or confirmed it with losses, and the reason names it; or the endpoints could not be bound"},
	{Code: cli.ExitUsage, Meaning: usageMeaning},
	{Code: cli.ExitQuorumFailed, Meaning: "the quorum was not reached within --quorum-timeout under --quorum-policy fail"},
	{Code: cli.ExitInterrupted, Meaning: "interrupted by SIGINT or SIGTERM, and what was published could not be drained"},
}

// SubscriberExitCodes says what syncsub's exit codes mean.
var SubscriberExitCodes = []cli.ExitCode{
	{Code: cli.ExitOK, Meaning: "END came from every publisher and every message up to END was delivered; nothing lost"},
	{Code: cli.ExitFailed, Meaning: "messages were lost (the summary and the loss events say which)"},
	{Code: cli.ExitUsage, Meaning: usageMeaning},
	{Code: cli.ExitQuorumFailed, Meaning: "a publisher ended because its quorum was not reached"},
	{Code: cli.ExitPublisherGone, Meaning: "a publisher disappeared without END; what it may have sent after the last delivery is reported lost"},
	{Code: cli.ExitUnreachable, Meaning: "no publisher joined within --connect-timeout (none answered the connection or the handshake); nothing was received"},
	{Code: cli.ExitInterrupted, Meaning: "interrupted by SIGINT or SIGTERM before END"},
}
