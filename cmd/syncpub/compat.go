package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/internal/wire"
	"go.uber.org/zap"
)

// runCompat is syncpub --compat zguide: the zguide's synchronized
// publisher, wire for wire, so the zguide's plain syncsub (C, pyzmq or
// any port) runs unchanged against it. Every request on the sync
// endpoint, whatever it holds, counts one subscriber and is answered with
// one empty frame; once --expect requests came, --count one-frame
// updates go out, then a one-frame "END". No HELLO, no envelope, no
// heartbeat, no recovery: a classic subscriber would count any of them as
// an update. docs/runbook.md says what that gives up.
//
// It reuses the PUB socket's pacing and limits, so a subscriber slower
// than --slow-timeout or more than --max-queue-bytes behind is still
// disconnected; with no sequence numbers nobody can tell what it missed.
func runCompat(sig *cli.Signals, o options, lg *zap.Logger) error {
	wcfg := compatWire(o.pub.Wire)
	wcfg.Logger = lg
	pub, err := wire.Listen(o.pub.Bind, wcfg)
	if err != nil {
		return cli.StartError(err, false)
	}
	defer pub.Close()
	syncs := &compatSync{expect: o.pub.Expect, reached: make(chan struct{})}
	if o.pub.Expect == 0 {
		close(syncs.reached)
	}
	srv, err := wire.Serve(o.pub.SyncBind, wire.ServerConfig{Logger: lg}, syncs.handle)
	if err != nil {
		return cli.StartError(err, false)
	}
	defer srv.Close()
	lg.Info("compat zguide: waiting for subscribers", zap.String("pub", pub.Endpoint()), zap.String("sync", srv.Endpoint()), zap.Int("expect", o.pub.Expect))

	wait := sig.Stop
	if o.pub.QuorumTimeout > 0 {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(wait, o.pub.QuorumTimeout)
		defer cancel()
	}
	select {
	case <-syncs.reached:
	case <-wait.Done():
		if sig.Interrupted() {
			return &cli.ExitError{Code: cli.ExitInterrupted, Err: errors.New("interrupted before the quorum")}
		}
		return &cli.ExitError{Code: cli.ExitQuorumFailed,
			Err: fmt.Errorf("quorum failed: %d of %d subscribers synchronized within --quorum-timeout %v", syncs.count(), o.pub.Expect, o.pub.QuorumTimeout)}
	}
	start := time.Now()
	n, err := compatPublish(sig.Stop, pub, o)
	if err != nil && !sig.Interrupted() {
		return fmt.Errorf("publishing failed after %d messages: %w", n, err)
	}
	// END goes out after every update, on the same connections.
	if err := pub.Send(sig.Abort, &wire.Msg{Frames: [][]byte{[]byte("END")}}); err != nil {
		return fmt.Errorf("sending END: %w", err)
	}
	ctx, cancel := context.WithTimeout(sig.Abort, o.drain)
	defer cancel()
	// Every connection is waited for: a classic subscriber hangs up once it has END.
	drainErr := pub.Shutdown(ctx, func(wire.ConnID) bool { return true })
	el := time.Since(start)
	outcome, exitErr := judge(n, drainErr, sig.Interrupted(), o.drain)
	lg.Info("done", zap.String("outcome", outcome), zap.String("compat", "zguide"), zap.Int("published", n), zap.Duration("elapsed", el),
		zap.Float64("msgs_per_sec", float64(n)/el.Seconds()), zap.Uint64("slow_consumers", pub.Stats().SlowConsumers))
	return exitErr
}

// compatPublish sends --count one-frame copies of --payload (or random
// payloads of --size bytes) at --rate. A classic subscriber subscribes to
// everything, so the payload is also the frame PUB matches on.
func compatPublish(ctx context.Context, pub *wire.Pub, o options) (int, error) {
	return eachPayload(ctx, o, func(_ int, payload []byte) error {
		return pub.Send(ctx, &wire.Msg{Frames: [][]byte{payload}})
	})
}

// compatSync counts sync requests the zguide's way: one per request.
type compatSync struct {
	expect  int
	mu      sync.Mutex
	n       int
	reached chan struct{} // closed at the expect-th request
}

func (c *compatSync) handle(_ context.Context, _ wire.Request, reply func(...[]byte) error) error {
	c.mu.Lock()
	c.n++
	if c.n == c.expect {
		close(c.reached)
	}
	c.mu.Unlock()
	return reply([]byte{})
}

func (c *compatSync) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// compatWire is the PUB socket's tuning the settings gave the publisher,
// for the socket compat mode uses without one.
func compatWire(w coord.PubWireConfig) wire.PubConfig {
	return wire.PubConfig{
		QueueBytes: w.QueueBytes, MaxQueueBytes: w.MaxQueueBytes, SendBuffer: w.SendBuffer,
		SlowTimeout: w.SlowTimeout, HandshakeTimeout: w.HandshakeTimeout,
		MaxPending: w.MaxPending, MaxPendingPerIP: w.MaxPendingPerIP,
		MaxPeers: w.MaxPeers, MaxConnsPerIP: w.MaxConnsPerIP,
		MaxSubscriptions: w.MaxSubscriptions, MaxSubscriptionBytes: w.MaxSubscriptionBytes,
		SubscriptionBudget: w.SubscriptionBudget,
	}
}
