package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/metrics"
	"go.uber.org/zap"
)

// runSubscriber receives until every publisher sent END (with
// --exit-on-end) or a signal, prints the summary and returns the error
// that carries the exit code (see settings.SubscriberExitCodes). SIGHUP
// rereads the TLS files.
func runSubscriber(sig *cli.Signals, o options, lg *zap.Logger, status *cli.Status) error {
	defer cli.ReloadOnHangup(o.sub.TLS, lg)()
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	p := newPrinter(out, status, o.output)
	ended := map[envelope.ID]bool{} // publishers whose END came; the handler's
	if o.sub.StateDir != "" {
		// What was printed must be out of the buffer before the checkpoint
		// says it was delivered, or a crash would lose it.
		o.sub.BeforeCheckpoint = p.flush
	}
	var fo *failover
	if len(o.relays) > 1 && o.sub.Connect != "" {
		fo = newFailover(o.relays, o.failoverAfter, lg)
	}
	o.sub.Handler = func(ev coord.Event) {
		if fo != nil {
			fo.note(ev)
		}
		if len(ended) == 0 { // after END the publisher hangs up: nothing to warn about
			logEvent(lg, ev)
		}
		if ev.Type == coord.EventEnd {
			ended[ev.Publisher] = true
		}
		p.handle(ev)
	}
	sub, err := coord.NewSubscriber(o.sub)
	if err != nil {
		// Nothing was received: exit 1 would say messages were lost. What
		// failed is a setting (a state directory, a gossip address).
		return cli.StartError(err, true)
	}
	psrv, err := cli.ServePprof(o.pprof, lg)
	if err != nil {
		sub.Close()
		return err
	}
	defer cli.StopServer(psrv)
	if fo != nil {
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { defer close(stopped); fo.run(ctx, sub) }()
		defer func() { cancel(); <-stopped }()
	}
	msrv, err := cli.ServeMetrics(o.metrics, lg, metrics.SubscriberReadiness(sub), metrics.NewSubscriberCollector(sub))
	if err != nil {
		sub.Close()
		return err
	}
	defer cli.StopServer(msrv)
	lg.Info("subscriber started", zap.String("id", sub.ID()), zap.String("connect", o.sub.Connect), zap.String("sync", o.sub.Sync),
		zap.String("gossip", sub.GossipAddr()))
	// Progress goes to a terminal on stderr, unless the messages themselves
	// are being printed to that terminal.
	if cli.IsTerminal(os.Stderr) && (o.output == "count" || !cli.IsTerminal(os.Stdout)) {
		rate := cli.NewRate(time.Now())
		status.Start(time.Second, func() string {
			st := sub.Stats()
			return fmt.Sprintf("received %d  rate %.0f/s  gaps %d", st.Received, rate.Per(time.Now(), st.Received), st.Gaps)
		})
	}
	waitJob(sub, o.exitOnEnd, sig.Stop.Done())
	if err := sub.Close(); err != nil { // the handler is not called after this
		lg.Warn("closing the subscriber", zap.Error(err))
	}
	status.Stop()
	st := sub.Stats()
	v := judge(sub.Err())
	p.summary(v, st, len(ended))
	lg.Info("subscriber finished", zap.String("outcome", v.outcome), zap.Uint64("received", st.Received), zap.Uint64("recovered", st.Recovered),
		zap.Uint64("lost", st.Lost), zap.Uint64("loss_events", st.LossEvents), zap.Uint64("unknown_tails", st.UnknownTails), zap.Uint64("gaps", st.Gaps), zap.Uint64("duplicates", st.Duplicates), zap.Uint64("malformed", st.Malformed),
		zap.Uint64("disconnects", st.Disconnects), zap.Uint64("repair_requests", st.RepairRequests), zap.Uint64("repair_timeouts", st.RepairTimeouts),
		zap.Uint64("held_shed", st.HeldShed), zap.Uint64("overflows", st.Overflows))
	return v.err()
}

// logEvent logs what the output does not show: disconnects. Losses are
// logged by the library with their range and cause.
func logEvent(lg *zap.Logger, ev coord.Event) {
	if ev.Type == coord.EventDisconnected {
		lg.Warn("disconnected from publisher", zap.String("endpoint", ev.Endpoint), zap.Error(ev.Err))
	}
}

// waitJob returns when stop is closed or the job is over: at its end
// with exitOnEnd, and whatever exitOnEnd says when no publisher joined
// within --connect-timeout (nothing will come to wait for).
func waitJob(sub *coord.Subscriber, exitOnEnd bool, stop <-chan struct{}) {
	done := sub.Done()
	for {
		select {
		case <-done:
			var je *coord.JobError
			if exitOnEnd || errors.As(sub.Err(), &je) && je.Outcome == coord.OutcomeUnreachable {
				return
			}
			done = nil // without --exit-on-end, run until stopped
		case <-stop:
			return
		}
	}
}
