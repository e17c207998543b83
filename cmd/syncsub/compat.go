package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/internal/wire"
	"go.uber.org/zap"
)

// compatSettle is how long syncsub --compat zguide waits after its data
// connection is up before it sends the sync request: the zguide's syncsub
// sleeps 1 s for the same reason. Without a HELLO nothing tells it that its
// subscription has reached the publisher, and a classic publisher starts
// at the last sync request, so an update sent before would be missed.
const compatSettle = time.Second

// runCompat is syncsub --compat zguide: the zguide's synchronized
// subscriber against the zguide's plain syncpub. It subscribes to
// everything, sends one empty sync request once the subscription had
// time to arrive, then counts every message as an update until a
// one-frame "END". No handshake proof, no sequence numbers, so no gap
// detection: a disconnect after the sync request may lose updates no one
// can name, and then the exit code is 1.
func runCompat(sig *cli.Signals, o options, lg *zap.Logger) error {
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	// Defaults, and no idle timeout: a zguide publisher sends no
	// heartbeats, so silence says nothing about the connection.
	sub := wire.NewSub(wire.SubConfig{}, "")
	defer sub.Close()
	if err := sub.Connect(o.sub.Connect); err != nil {
		return err
	}
	ctx := sig.Stop
	if err := waitConnected(ctx, sub); err != nil {
		return compatInterrupted(sig, 0, err)
	}
	t := time.NewTimer(compatSettle)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return compatInterrupted(sig, 0, ctx.Err())
	}
	if err := compatSync(ctx, o.sub.Sync); err != nil {
		return compatInterrupted(sig, 0, err)
	}
	lg.Info("compat zguide: synchronized", zap.String("connect", o.sub.Connect), zap.String("sync", o.sub.Sync))
	n, disconnects := 0, 0
	for {
		d, err := sub.Recv(ctx)
		if err != nil {
			return compatInterrupted(sig, n, err)
		}
		switch d.Kind {
		case wire.Disconnected:
			disconnects++
			lg.Warn("disconnected from the publisher; updates sent meanwhile are lost and cannot be counted (compat zguide has no sequence numbers)",
				zap.String("endpoint", d.Endpoint), zap.Error(d.Err))
			continue
		case wire.Connected:
			continue
		}
		if len(d.Frames) == 1 && string(d.Frames[0]) == "END" {
			break
		}
		n++
		if o.output == "text" {
			for i, f := range d.Frames {
				if i > 0 {
					out.WriteByte(' ')
				}
				out.Write(f)
			}
			out.WriteByte('\n')
		}
	}
	if o.output == "count" {
		fmt.Fprintf(out, "Received %d updates\n", n)
	}
	if disconnects > 0 {
		return &cli.ExitError{Code: cli.ExitFailed,
			Err: fmt.Errorf("received %d updates, but the connection dropped %d time(s): updates may have been lost, and compat zguide cannot tell how many", n, disconnects)}
	}
	lg.Info("subscriber finished", zap.String("outcome", "ok"), zap.String("compat", "zguide"), zap.Int("received", n))
	return nil
}

// waitConnected waits for the data connection's handshake, after which
// the subscription is on its way.
func waitConnected(ctx context.Context, sub *wire.Sub) error {
	for {
		d, err := sub.Recv(ctx)
		if err != nil {
			return err
		}
		if d.Kind == wire.Connected {
			return nil
		}
	}
}

// compatSync sends the zguide's empty sync request and waits for its
// reply. A classic publisher counts every request, so a request is never
// repeated once it may have been sent: one attempt, waiting as long as it
// takes. Until the sync endpoint accepts connections (the publisher is
// not up yet) it only probes, every 100 ms.
func compatSync(ctx context.Context, endpoint string) error {
	if _, err := wire.SplitEndpoint(endpoint); err != nil {
		return err
	}
	for {
		// The endpoint's own transport: a tcp:// dial of an ipc:// path
		// never succeeds, and the request was never sent.
		if wire.Probe(ctx, endpoint) == nil {
			break
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	c, err := wire.NewClient(endpoint, wire.ClientConfig{Timeout: 24 * time.Hour, Attempts: 1})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Request(ctx, [][]byte{{}})
	return err
}

func compatInterrupted(sig *cli.Signals, n int, err error) error {
	if sig.Interrupted() {
		return &cli.ExitError{Code: cli.ExitInterrupted, Err: fmt.Errorf("interrupted before END: received %d updates", n)}
	}
	return err
}
