package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/syncmq/syncmq/diagnose"

	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
	"github.com/syncmq/syncmq/coord"
)

func newDiagnoseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diagnose",
		Short: "Subscribe for a while and walk the zguide missing-message flowchart",
		Long: `diagnose joins the publisher like a normal subscriber, watches the stream for
--duration (or until END), then walks the zguide "Missing Message Problem
Solver" flowchart against what it saw: each question gets pass, fail or
not applicable, with the evidence and the remedy. docs/runbook.md explains
every verdict. The exit code is 1 when a step fails. With --join it finds
the publishers through gossip, as syncsub does (it is then a member, and
counts toward a --quorum all until it leaves).`,
		Args:          cli.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := settings.DefaultDiagnose()
			r, err := cli.Load(cmd, settings.SubscriberPrefix, &s)
			if err != nil {
				return err
			}
			cfg := coord.SubscriberConfig{Connect: s.Connect, Sync: s.Sync, Recovery: s.Recovery}
			var c cli.Checks
			if c.Prefixes("subscribe", s.Subscribe) {
				cfg.Subscribe = s.Subscribe
			}
			c.AtLeast("duration", s.Duration, minDiagnoseDuration)
			c.Add(withTLS(s.TLS, &cfg)...)
			c.Add(withGossip(s.Gossip, r, &cfg)...)
			if err := validate(&cfg, &c); err != nil {
				return err
			}
			lg, err := s.Common.Logger(os.Stderr)
			if err != nil {
				return err
			}
			defer func() { _ = lg.Sync() }()
			cfg.Logger = lg
			defer cli.ReloadOnHangup(cfg.TLS, lg)()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			report, err := runDiagnosis(ctx, cfg, s.Duration)
			if err != nil {
				return cli.StartError(err, true) // it never joined: the configuration is what failed
			}
			fmt.Fprint(cmd.OutOrStdout(), report.String())
			if !report.OK() {
				return fmt.Errorf("diagnosis: %s", report.Cause)
			}
			return nil
		},
	}
	defaults := settings.DefaultDiagnose()
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	cli.AddFlags(cmd.Flags(), &defaults)
	return cmd
}

// minDiagnoseDuration is the shortest --duration: a publisher needs a
// HELLO round and a handshake before there is anything to watch.
const minDiagnoseDuration = 100 * time.Millisecond

// runDiagnosis runs a subscriber for d or until END and walks the flowchart
// with what it saw.
func runDiagnosis(ctx context.Context, cfg coord.SubscriberConfig, d time.Duration) (diagnose.Report, error) {
	ended := make(chan struct{})
	cfg.Handler = func(ev coord.Event) {
		if ev.Type == coord.EventEnd {
			select {
			case <-ended:
			default:
				close(ended)
			}
		}
	}
	sub, err := coord.NewSubscriber(cfg)
	if err != nil {
		return diagnose.Report{}, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ended:
	case <-t.C:
	case <-ctx.Done():
	}
	sub.Close()
	return diagnose.Diagnose(sub.Evidence()), nil
}
