// Command syncpub is a synchronized publisher: it waits until a quorum of
// subscribers has joined through the sync handshake, publishes, then sends
// END and waits for the subscribers to take everything.
//
//	syncpub --bind tcp://127.0.0.1:5561 --sync-bind tcp://127.0.0.1:5562 --expect 10 --count 1000000 --payload Rhubarb
//	syncpub demo
package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
)

func main() {
	cli.Exit("syncpub", newRootCommand().Execute())
}

func newRootCommand() *cobra.Command {
	defaults := settings.DefaultPublisher()
	root := &cobra.Command{
		Use:   "syncpub",
		Short: "Publish to a quorum of synchronized subscribers",
		Long: `syncpub waits until a quorum of subscribers has joined through the sync
handshake (each proving its data path), publishes --count messages or the
lines of stdin, sends END and waits until the subscribers took everything.
SIGINT or SIGTERM stops publishing and drains what was published; a second
signal gives up draining. On a terminal, progress shows on stderr.

Every flag can also be set in the environment (SYNCPUB_ and the name in
upper case with underscores, e.g. SYNCPUB_QUORUM_TIMEOUT=30s) or in the YAML
file given with --config (keys are the flag names); flags win, then the
environment, then the file. docs/configuration.md lists every setting.

` + cli.FormatExitCodes(settings.PublisherExitCodes),
		Version:       cli.Version(),
		Args:          cli.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := settings.DefaultPublisher()
			r, err := cli.Load(cmd, settings.PublisherPrefix, &s)
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
			o.pub.Logger = lg
			sig := cli.WatchSignals(cmd.Context())
			defer sig.Close()
			if o.compat {
				return runCompat(sig, o, lg)
			}
			return runPublisher(sig, o, lg, status)
		},
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	cli.AddFlags(root.Flags(), &defaults)
	root.AddCommand(newDemoCommand(), newBenchCommand(), newRelayCommand(), newRawPubCommand(), newRawSubCommand())
	return root
}
