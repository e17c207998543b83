// Command syncsub is a synchronized subscriber: it connects to a
// publisher, proves its data path through the sync handshake, and prints
// what it receives until the publisher sends END.
//
//	syncsub --connect tcp://127.0.0.1:5561 --sync tcp://127.0.0.1:5562 --output count
package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
)

func main() {
	cli.Exit("syncsub", newRootCommand().Execute())
}

func newRootCommand() *cobra.Command {
	defaults := settings.DefaultSubscriber()
	root := &cobra.Command{
		Use:   "syncsub",
		Short: "Subscribe to a synchronized publisher",
		Long: `syncsub joins a publisher's quorum through the sync handshake, proving its
data path, and prints what it receives until every publisher sent END.
Gaps are repaired from the publisher's history; what cannot be repaired is
reported as a loss. --output text prints "topic seq payload" lines on
stdout and events (joined, loss, caught-up, publisher-restart, end) on
stderr; --output json prints one typed JSON object per line on stdout
(messages, events, and a final summary); --output count prints the zguide's
"Received N updates" and a line with the outcome. On a terminal, progress
shows on stderr.

Every flag can also be set in the environment (SYNCSUB_ and the name in
upper case with underscores, e.g. SYNCSUB_OUTPUT=json) or in the YAML file
given with --config (keys are the flag names); flags win, then the
environment, then the file. docs/configuration.md lists every setting.

` + cli.FormatExitCodes(settings.SubscriberExitCodes),
		Version:       cli.Version(),
		Args:          cli.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := settings.DefaultSubscriber()
			r, err := cli.Load(cmd, settings.SubscriberPrefix, &s)
			if err != nil {
				return err
			}
			o, err := buildOptions(s, r)
			if err != nil {
				return err
			}
			if s.CheckConfig {
				return cli.PrintSettings(cmd.OutOrStdout(), r)
			}
			status := cli.NewStatus(os.Stderr)
			lg, err := s.Common.Logger(status)
			if err != nil {
				return err
			}
			defer func() { _ = lg.Sync() }()
			o.sub.Logger = lg
			sig := cli.WatchSignals(cmd.Context())
			defer sig.Close()
			if o.compat {
				return runCompat(sig, o, lg)
			}
			return runSubscriber(sig, o, lg, status)
		},
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	cli.AddFlags(root.Flags(), &defaults)
	root.AddCommand(newDiagnoseCommand())
	return root
}
