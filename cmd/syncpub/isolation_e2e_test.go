package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
	"github.com/syncmq/syncmq/internal/zmtptest"
	"github.com/syncmq/syncmq/proto/handshake"
)

// Process-level tests of what a peer can make the publisher hold:
// subscriptions, subscriber ids, metrics connections.

// subscriptionFlood has conns connections from src each subscribe to
// prefixes distinct prefixes of size bytes, none of them joining; a
// connection the publisher closes is opened again and goes on where it
// stopped, until every prefix was sent or ctx ends. One more connection
// subscribes and cancels one prefix of size bytes in a loop.
type subscriptionFlood struct {
	sent, redials, churned atomic.Int64
}

func startSubscriptionFlood(ctx context.Context, wg *sync.WaitGroup, endpoint, src string, conns, prefixes, size int) *subscriptionFlood {
	f := &subscriptionFlood{}
	prefix := func(c, i int) string {
		tag := fmt.Sprintf("c%d-p%d-", c, i)
		return tag + strings.Repeat("x", size-len(tag))
	}
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < prefixes && ctx.Err() == nil; {
				conn, err := zmtptest.Dial(ctx, endpoint, "SUB", src)
				if err != nil {
					continue
				}
				for ; i < prefixes; i++ {
					conn.QueueSubscribe(prefix(c, i))
					if i%8 == 7 && conn.Flush() != nil {
						break // cut: open another and go on
					}
					f.sent.Add(1)
				}
				conn.Close()
				f.redials.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		big := prefix(-1, 0)
		for ctx.Err() == nil {
			conn, err := zmtptest.Dial(ctx, endpoint, "SUB", src)
			if err != nil {
				continue
			}
			for ctx.Err() == nil {
				conn.Queue(append([]byte{1}, big...))
				conn.Queue(append([]byte{0}, big...))
				if conn.Flush() != nil {
					break
				}
				f.churned.Add(1)
			}
			conn.Close()
		}
	}()
	return f
}

// TestSubscriptionFloodProcess: 200 connections from one address that
// never join each subscribe 1,000 prefixes of 4 KB (each one cut at
// --max-subscription-bytes opens another and goes on), while one more
// subscribes and cancels a 4 KB prefix in a loop. syncpub's peak RSS
// stays within --history-bytes (its memory budget) + 64 MiB, and a real
// subscriber then joins and gets the whole job.
func TestSubscriptionFloodProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 subscriptions of 4 KB")
	}
	const conns, prefixes, size, history, count = 200, 1000, 4000, 16 << 20, 10_000
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "1", "--count", fmt.Sprint(count), "--history-bytes", fmt.Sprint(history), "--join-timeout", "1h",
		"--log-level", "info", "--log-format", "json")
	waitLog(t, pub, 30*time.Second, "waiting for subscribers", "")
	rss := watchRSS(pub)
	before, _ := vmHWM(fmt.Sprintf("/proc/%d/status", pub.Cmd.Process.Pid))
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := time.Now()
	flood := startSubscriptionFlood(fctx, &wg, pubEP, "127.0.0.2", conns, prefixes, size)
	clustertest.WaitFor(t, 2*time.Minute, "every prefix sent", func() bool { return flood.sent.Load() >= conns*prefixes })
	stop()
	wg.Wait()
	flooded := time.Since(start)
	during := rss.hwm.Load()
	sub := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "count", "--log-level", "warn")
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, tail(pub.Stderr.String(), 2000))
	}
	peak := rss.peak(pub)
	if code := sub.Wait(ctx); code != 0 || !zguideOK(sub.Stdout.String(), count) {
		t.Fatalf("syncsub exited %d: %s %s", code, sub.Stdout.String(), sub.Stderr.String())
	}
	bound := int64(history+64<<20) >> 10
	t.Logf("%d prefixes of %d B offered in %v over %d connections (%d reconnects), %d SUBSCRIBE/CANCEL loops: syncpub peak RSS %.1f MiB before, %.1f MiB during, %.1f MiB in all; bound %.0f MiB",
		flood.sent.Load(), size, flooded.Round(time.Millisecond), conns, flood.redials.Load(), flood.churned.Load(),
		float64(before)/1024, float64(during)/1024, float64(peak)/1024, float64(bound)/1024)
	if peak > bound {
		t.Errorf("peak RSS %d KiB above --history-bytes + 64 MiB (%d KiB)", peak, bound)
	}
	if !strings.Contains(pub.Stderr.String(), "subscriber disconnected for too many subscriptions") {
		t.Errorf("no warning about the subscriptions: %s", tail(pub.Stderr.String(), 2000))
	}
}

// TestSquattersProcess: with --expect 2 and --max-subscribers 20, 20
// ids join one after the other through raw connections from 20
// addresses, each hanging up before the next joins, so the quorum is
// never reached: they filled every place before, and the real
// subscribers were refused "full" for the rest of the epoch. Now each
// squatter is forgotten when it leaves, two syncsubs join, and the job
// runs to its end.
func TestSquattersProcess(t *testing.T) {
	const squatters, count = 20, 1000
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	metricsAddr := strings.TrimPrefix(clustertest.FreeEndpoint(t), "tcp://")
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "2", "--max-subscribers", fmt.Sprint(squatters), "--count", fmt.Sprint(count),
		"--metrics-addr", metricsAddr, "--log-level", "info", "--log-format", "json")
	waitLog(t, pub, 30*time.Second, "waiting for subscribers", "")
	for i := 0; i < squatters; i++ {
		if code := squat(t, ctx, pubEP, syncEP, fmt.Sprintf("squatter-%d", i), fmt.Sprintf("127.0.1.%d", i+1)); code != "" {
			t.Fatalf("squatter %d refused %q", i, code)
		}
		// Each leaves before the next joins: on a busy machine the
		// publisher could otherwise count two at once, start, and then
		// rightly wait for both to confirm.
		clustertest.WaitFor(t, 30*time.Second, fmt.Sprint("squatter ", i, " forgotten"), func() bool {
			return metricValue(metricsAddr, "syncmq_publisher_forgotten_subscribers_total") >= float64(i+1)
		})
	}
	var subs []*proctest.Proc
	for i := 0; i < 2; i++ {
		subs = append(subs, proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "count",
			"--id", fmt.Sprintf("real-%d", i), "--log-level", "warn"))
	}
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, tail(pub.Stderr.String(), 2000))
	}
	for i, s := range subs {
		if code := s.Wait(ctx); code != 0 || !zguideOK(s.Stdout.String(), count) {
			t.Errorf("syncsub %d exited %d: %s %s", i, code, s.Stdout.String(), s.Stderr.String())
		}
	}
	if n := strings.Count(pub.Stderr.String(), "left before the start"); n < 1 || n > 2 {
		t.Errorf("%d lines about squatters leaving, want one (rate-limited)", n)
	}
}

// squat joins the publisher at pubEP under id from address src through
// raw connections (a SUB that takes a HELLO, a DEALER that sends READY),
// hangs up, and returns the refusal code ("" for an ACK).
func squat(t *testing.T, ctx context.Context, pubEP, syncEP, id, src string) string {
	t.Helper()
	data, err := zmtptest.Dial(ctx, pubEP, "SUB", src)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	if err := data.Subscribe(envelope.ControlTopic); err != nil {
		t.Fatal(err)
	}
	data.SetReadDeadline(time.Now().Add(30 * time.Second))
	var hello *envelope.Message
	for hello == nil {
		frames, err := data.Recv()
		if err != nil {
			t.Fatalf("waiting for a HELLO: %v", err)
		}
		if m, err := envelope.Decode(frames, envelope.Limits{}); err == nil && m.Kind == envelope.KindHello {
			hello = &m
		}
	}
	sync, err := zmtptest.Dial(ctx, syncEP, "DEALER", src)
	if err != nil {
		t.Fatal(err)
	}
	defer sync.Close()
	ready := handshake.Encode(handshake.Ready{V: handshake.Version, Type: handshake.TypeReady, Subscriber: id,
		Publisher: hello.Publisher.String(), Epoch: hello.Epoch, Nonce: hex.EncodeToString(hello.Payload)})
	if err := sync.Send(ready); err != nil {
		t.Fatal(err)
	}
	sync.SetReadDeadline(time.Now().Add(30 * time.Second))
	frames, err := sync.Recv()
	if err != nil {
		t.Fatalf("sync reply: %v", err)
	}
	if _, err := handshake.DecodeReply(frames[len(frames)-1]); err != nil {
		var er *handshake.ErrorReply
		if errors.As(err, &er) {
			return er.Code
		}
		t.Fatalf("sync reply: %v", err)
	}
	return ""
}
