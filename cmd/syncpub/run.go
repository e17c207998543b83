package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/journal"
	"github.com/syncmq/syncmq/metrics"
	"go.uber.org/zap"
)

// runPublisher runs the job: quorum, publishing, END and drain. Its error
// carries the exit code (see settings.PublisherExitCodes). A signal stops
// publishing; what was published is then drained within --drain-timeout,
// or until a second signal. SIGHUP rereads the TLS files.
func runPublisher(sig *cli.Signals, o options, lg *zap.Logger, status *cli.Status) error {
	defer cli.ReloadOnHangup(o.pub.TLS, lg)()
	setMemoryLimit(o, lg)
	pub, err := coord.NewPublisher(o.pub)
	if errors.Is(err, journal.ErrPublisher) || errors.Is(err, journal.ErrDirectory) {
		return &cli.UsageError{Err: fmt.Errorf("data-dir: %w", err)} // fix the flag, then start again
	}
	if err != nil {
		return err
	}
	msrv, err := cli.ServeMetrics(o.metrics, lg, metrics.PublisherReadiness(pub), metrics.NewPublisherCollector(pub))
	if err != nil {
		pub.Close()
		return err
	}
	defer cli.StopMetrics(msrv) // after the drain: scrapes see the end
	drain := func() error {
		ctx, cancel := context.WithTimeout(sig.Abort, o.drain)
		defer cancel()
		return pub.Shutdown(ctx)
	}
	if addr := pub.GossipAddr(); addr != "" {
		lg.Info("gossip", zap.String("addr", addr), zap.String("join_with", "--join "+addr))
	}
	lg.Info("waiting for subscribers", zap.Stringer("quorum", pub.Quorum()))
	if err := pub.WaitQuorum(sig.Stop); err != nil {
		var qe *coord.QuorumError
		switch {
		case errors.As(err, &qe):
			_ = drain() // END to those who joined; the quorum failure is what to report
			lg.Info("done", zap.String("outcome", "quorum-failed"), zap.Int("joined", qe.Joined), zap.Int("expect", qe.Expect))
			return &cli.ExitError{Code: cli.ExitQuorumFailed,
				Err: fmt.Errorf("quorum failed: %d of %d subscribers joined within --quorum-timeout %v", qe.Joined, qe.Expect, o.pub.QuorumTimeout)}
		case sig.Interrupted():
			return finish(pub, 0, time.Now(), drain(), true, o, lg)
		default:
			_ = drain()
			return err
		}
	}
	st := pub.Stats()
	lg.Info("quorum reached, publishing", zap.Int("joined", st.Joined), zap.Int("live", st.Live), zap.Int("need", st.Need))
	if cli.IsTerminal(os.Stderr) {
		rate := cli.NewRate(time.Now())
		status.Start(time.Second, func() string {
			n := pub.Stats().Published
			return fmt.Sprintf("published %d  rate %.0f/s", n, rate.Per(time.Now(), n))
		})
	}
	start := time.Now()
	n, err := publish(sig.Stop, pub, o)
	status.Stop()
	interrupted := sig.Interrupted()
	if err != nil && !(interrupted && errors.Is(err, context.Canceled)) {
		_ = drain()
		return fmt.Errorf("publishing failed after %d messages: %w", n, err)
	}
	return finish(pub, n, start, drain(), interrupted, o, lg)
}

// finish logs how the job ended and returns the error that says so.
func finish(pub *coord.Publisher, n int, start time.Time, drainErr error, interrupted bool, o options, lg *zap.Logger) error {
	el := time.Since(start)
	st := pub.Stats()
	outcome, err := judge(n, drainErr, interrupted, o.drain)
	lg.Info("done", zap.String("outcome", outcome), zap.Int("published", n), zap.Duration("elapsed", el),
		zap.Float64("msgs_per_sec", float64(n)/el.Seconds()), zap.Uint64("batches", st.Batches),
		zap.Uint64("slow_consumers", st.Wire.SlowConsumers))
	if outcome == outcomeStopped {
		lg.Info("stopped by signal; everything published was handed to the subscribers", zap.Int("published", n))
	}
	return err
}

// Outcomes of a run that reached the end of publishing (or was stopped
// before), as the "done" log line names them.
const (
	outcomeOK          = "ok"
	outcomeStopped     = "stopped"     // a signal, and what was published drained: exit 0
	outcomeInterrupted = "interrupted" // a signal, and it did not drain: exit 130
	outcomeDrainFailed = "drain-failed"
	// unconfirmed: every message was sent, END too, but not every
	// subscriber that joined confirmed it got everything: exit 1.
	outcomeUnconfirmed = "unconfirmed"
)

// judge decides how a run ended from the drain's result: n messages were
// published, drainErr is what Close returned, and interrupted says a
// signal stopped publishing.
func judge(n int, drainErr error, interrupted bool, drain time.Duration) (string, error) {
	switch {
	case drainErr != nil && interrupted:
		return outcomeInterrupted, &cli.ExitError{Code: cli.ExitInterrupted,
			Err: fmt.Errorf("interrupted after publishing %d messages, and not all could be handed to subscribers: %v", n, drainErr)}
	case errors.Is(drainErr, coord.ErrUnconfirmed) && !errors.Is(drainErr, context.DeadlineExceeded):
		return outcomeUnconfirmed, fmt.Errorf("published %d messages and END, but %w", n, drainErr)
	case drainErr != nil:
		return outcomeDrainFailed, fmt.Errorf("published %d messages but could not hand all to subscribers within --drain-timeout %v: %w", n, drain, drainErr)
	case interrupted:
		return outcomeStopped, nil
	}
	return outcomeOK, nil
}
