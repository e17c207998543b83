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
	if err != nil {
		return startError(err)
	}
	psrv, err := cli.ServePprof(o.pprof, lg)
	if err != nil {
		pub.Close()
		return err
	}
	defer cli.StopServer(psrv)
	msrv, err := cli.ServeMetrics(o.metrics, lg, metrics.PublisherReadiness(pub), metrics.NewPublisherCollector(pub))
	if err != nil {
		pub.Close()
		return err
	}
	defer cli.StopServer(msrv) // after the drain: scrapes see the end
	total := o.count
	if o.stdin {
		total = 0
	}
	prog := newProgress(pub.Stats, total, time.Now())
	if cli.IsTerminal(os.Stderr) {
		status.Start(progressInterval, func() string { return prog.line(time.Now()) })
	}
	defer status.Stop()
	drain := func(n int) error {
		prog.draining(n)
		// --linger-after-end is served in full; --drain-timeout bounds
		// the wait for subscribers beyond it.
		ctx, cancel := context.WithTimeout(sig.Abort, o.drain+o.lingerAfterEnd)
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
			_ = drain(0) // END to those who joined; the quorum failure is what to report
			lg.Info("done", zap.String("outcome", "quorum-failed"), zap.Int("joined", qe.Joined), zap.Int("expect", qe.Expect))
			return &cli.ExitError{Code: cli.ExitQuorumFailed,
				Err: fmt.Errorf("quorum failed: %d of %d subscribers joined within --quorum-timeout %v", qe.Joined, qe.Expect, o.pub.QuorumTimeout)}
		case sig.Interrupted():
			return finish(pub, 0, time.Now(), drain(0), true, o, lg, status)
		default:
			_ = drain(0)
			return err
		}
	}
	start := time.Now()
	prog.publishing(start)
	n, err := publish(sig.Stop, pub, o)
	interrupted := sig.Interrupted()
	if err != nil && !(interrupted && errors.Is(err, context.Canceled)) {
		_ = drain(n)
		return fmt.Errorf("publishing failed after %d messages: %w", n, err)
	}
	return finish(pub, n, start, drain(n), interrupted, o, lg, status)
}

// progressInterval is how often the progress line is redrawn.
const progressInterval = 500 * time.Millisecond

// startError is the error to exit with when the publisher could not
// start: exit 2 when the configuration names an address or a data
// directory that cannot be used (fix it and start again), else 1.
func startError(err error) error {
	dataDir := errors.Is(err, journal.ErrPublisher) || errors.Is(err, journal.ErrDirectory) || errors.Is(err, journal.ErrLocked)
	if dataDir {
		return &cli.UsageError{Err: fmt.Errorf("data-dir: %w", err)}
	}
	return cli.StartError(err, false)
}

// finish logs how the job ended, leaves a final line on the terminal and
// returns the error that says how it ended.
func finish(pub *coord.Publisher, n int, start time.Time, drainErr error, interrupted bool, o options, lg *zap.Logger, status *cli.Status) error {
	el := time.Since(start)
	st := pub.Stats()
	outcome, err := judge(n, drainErr, interrupted, o.drain)
	status.Finish(finalLine(n, el))
	lg.Info("done", zap.String("outcome", outcome), zap.Int("published", n), zap.Duration("elapsed", el.Round(time.Millisecond)),
		zap.Int64("msgs_per_sec", int64(perSecond(n, el))), zap.Uint64("batches", st.Batches),
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
