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
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			c, err := cli.Load(cmd, "SYNCSUB")
			if err != nil {
				return err
			}
			lg, err := c.Logger()
			if err != nil {
				return err
			}
			cfg := coord.SubscriberConfig{Logger: lg, Handler: func(coord.Event) {}}
			var errs []error
			str := func(k string) string {
				v, err := c.String(k)
				if err != nil {
					errs = append(errs, err)
				}
				return v
			}
			cfg.Connect, cfg.Sync, cfg.Recovery = str("connect"), str("sync"), str("recovery")
			if cfg.Subscribe, err = c.Strings("subscribe"); err != nil {
				return err
			}
			d, err := c.Duration("duration")
			if err != nil {
				return err
			}
			if err := withGossip(c, &cfg); err != nil {
				return err
			}
			if len(errs) > 0 {
				return errs[0]
			}
			if err := cfg.Validate(); err != nil {
				return cli.Usagef("%v", err)
			}
			report, err := runDiagnosis(ctx, cfg, d)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), report.String())
			if !report.OK() {
				return fmt.Errorf("diagnosis: %s", report.Cause)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	fs := cmd.Flags()
	fs.String("connect", "tcp://localhost:5561", "publisher's PUB endpoint")
	fs.String("sync", "tcp://localhost:5562", "publisher's sync endpoint")
	fs.String("recovery", "", "publisher's recovery endpoint (default: from the ACK)")
	fs.StringArray("subscribe", nil, "topic prefix (repeatable; default: every topic)")
	fs.Duration("duration", 5*time.Second, "how long to watch the stream (it stops earlier at END)")
	cli.AddGossipFlags(fs)
	cli.AddCommonFlags(fs)
	return cmd
}

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
