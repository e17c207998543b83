package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/metrics"
	"github.com/syncmq/syncmq/recovery"
	"github.com/syncmq/syncmq/relay"
	"go.uber.org/zap"
)

func newRelayCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Subscribe to a publisher and serve its stream, unchanged, to subscribers of its own",
		Long: `relay is a fan-out tier. It joins an upstream publisher (the origin, or
another relay) as one subscriber (--connect, --sync, --subscribe, --id as
syncsub's) and serves the same stream downstream as a publisher, with
every setting syncpub serves its subscribers with (endpoints, history,
limits, pace policies; --expect counts the subscribers that must join the
relay before it joins upstream), under the upstream publisher's id and epoch, with topics and
sequence numbers unchanged. It joins upstream only once its own --expect
subscribers joined it. Its subscribers repair from the relay's history;
the relay repairs its own gaps upstream, and forwards what upstream
reported lost with its cause. After the upstream END it sends END, waits
for every downstream subscriber's BYE, and only then says BYE upstream.
The --tls-* settings serve both sides. docs/relay.md has the topology and
what happens on each failure.

` + cli.FormatExitCodes(settings.RelayExitCodes),
		Args:          cli.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := settings.DefaultRelay()
			r, err := cli.Load(cmd, settings.PublisherPrefix, &s)
			if err != nil {
				return err
			}
			o, err := buildRelayOptions(s)
			if err != nil {
				return err
			}
			if s.CheckConfig {
				return cli.PrintSettings(cmd.OutOrStdout(), r)
			}
			lg, err := s.Common.Logger(cli.NewStatus(os.Stderr))
			if err != nil {
				return err
			}
			defer func() { _ = lg.Sync() }()
			o.cfg.Logger = lg
			sig := cli.WatchSignals(cmd.Context())
			defer sig.Close()
			return runRelay(sig, o, lg)
		},
	}
	defaults := settings.DefaultRelay()
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	cli.AddFlags(cmd.Flags(), &defaults)
	return cmd
}

// relayOptions is what runRelay needs, checked.
type relayOptions struct {
	cfg     relay.Config
	metrics string
}

// buildRelayOptions turns the settings into the relay's configuration,
// returning a UsageError that lists every problem, named by its flag.
func buildRelayOptions(s settings.Relay) (relayOptions, error) {
	var c cli.Checks
	tlsCfg, tlsProblems := s.TLS.Load()
	c.Add(tlsProblems...)

	up := coord.SubscriberConfig{Connect: s.Connect, Sync: s.Sync, Recovery: s.Recovery, ID: s.ID, StartAt: s.StartAt, TLS: tlsCfg}
	if c.Prefixes("subscribe", s.Subscribe) {
		up.Subscribe = s.Subscribe
	}
	up.Stream = recovery.DefaultStreamConfig()
	if c.AtLeast("repair-timeout", s.RepairTimeout, recovery.MinRepairTimeout) {
		up.Stream.RepairTimeout = s.RepairTimeout
	}
	if c.SizeAtLeast("max-held-bytes", s.MaxHeldBytes, 1) {
		up.Stream.MaxHeldBytes = int64(s.MaxHeldBytes)
	}
	if c.AtLeast("publisher-timeout", s.PublisherTimeout, coord.MinPublisherTimeout) {
		up.PublisherTimeout = s.PublisherTimeout
	}

	down := servingConfig(s.Serving, tlsCfg, len(tlsProblems) == 0, &c)
	c.AtLeast("probe-timeout", s.ProbeTimeout, minDrainTimeout)
	c.Add(cli.CheckMetricsAddr(s.MetricsAddr))

	cfg := relay.Config{Upstream: up, Downstream: down, ProbeTimeout: s.ProbeTimeout, DrainTimeout: s.DrainTimeout, EndGrace: s.EndGrace}
	if len(tlsProblems) == 0 { // else reported once, as the TLS problem
		if err := cfg.Validate(); err != nil {
			c.Add(cli.SplitLines(err)...)
		}
	}
	if err := c.Err(); err != nil {
		return relayOptions{}, err
	}
	return relayOptions{cfg: cfg, metrics: s.MetricsAddr}, nil
}

// runRelay runs the relay until its job ends or a signal stops it, and
// returns the error that carries the exit code (settings.RelayExitCodes).
func runRelay(sig *cli.Signals, o relayOptions, lg *zap.Logger) error {
	defer cli.ReloadOnHangup(o.cfg.Upstream.TLS, lg)()
	r, err := relay.New(o.cfg)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	msrv, err := cli.ServeMetrics(o.metrics, lg, relayReadiness(r), relayCollector{r})
	if err != nil {
		return err
	}
	defer cli.StopServer(msrv)
	err = r.Run(sig.Stop)
	st := r.Stats()
	lg.Info("done", zap.Uint64("forwarded", st.Forwarded), zap.Uint64("messages_whole", st.Whole), zap.Uint64("lost_upstream", st.Lost),
		zap.Uint64("upstream_restarts", st.Restarts), zap.Error(err))
	return relayExit(err, sig)
}

// relayExit maps Run's error to the exit code.
func relayExit(err error, sig *cli.Signals) error {
	if err == nil {
		return nil
	}
	var (
		qe *coord.QuorumError
		je *coord.JobError
	)
	switch {
	case sig.Interrupted() || errors.Is(err, context.Canceled):
		return &cli.ExitError{Code: cli.ExitInterrupted, Err: err}
	case errors.As(err, &qe):
		return &cli.ExitError{Code: cli.ExitQuorumFailed, Err: fmt.Errorf("downstream quorum failed: %d of %d subscribers joined: %w", qe.Joined, qe.Expect, err)}
	case errors.As(err, &je) && je.Outcome == coord.OutcomeQuorumFailed:
		return &cli.ExitError{Code: cli.ExitQuorumFailed, Err: err}
	case errors.As(err, &je) && je.Outcome == coord.OutcomePublisherGone, errors.Is(err, relay.ErrNoUpstream):
		return &cli.ExitError{Code: cli.ExitPublisherGone, Err: err}
	case errors.Is(err, wire.ErrClosed) || cli.UnusableAddress(err):
		return cli.StartError(err, false)
	}
	return err
}

// relayReadiness: ready while joined upstream and publishing downstream.
func relayReadiness(r *relay.Relay) metrics.Readiness {
	return func() (bool, string) {
		pub, sub := r.Publisher(), r.Subscriber()
		if pub == nil {
			return false, "looking for the upstream publisher"
		}
		if ok, why := metrics.PublisherReady(pub.Stats()); !ok {
			return false, "downstream: " + why
		}
		if sub == nil {
			return false, "not joined upstream yet"
		}
		if ok, why := metrics.SubscriberReady(sub.Stats()); !ok {
			return false, "upstream: " + why
		}
		return true, "ready"
	}
}

// relayCollector exports the relay's own metrics, and the downstream
// publisher's and the upstream subscriber's once they exist.
type relayCollector struct{ r *relay.Relay }

func (c relayCollector) Describe(chan<- *prometheus.Desc) {} // unchecked: the two sides come and go

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	metrics.NewRelayCollector(c.r).Collect(ch)
	if pub := c.r.Publisher(); pub != nil {
		metrics.NewPublisherCollector(pub).Collect(ch)
	}
	if sub := c.r.Subscriber(); sub != nil {
		metrics.NewSubscriberCollector(sub).Collect(ch)
	}
}
