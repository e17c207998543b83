package coord

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/zmtptest"
)

// Hostile peers that hold connections: idle ones on every port, and one
// that subscribes without end.

// openIdle opens n connections to endpoint that complete the ZMTP
// handshake as socketType and then say nothing: the first perIP from
// 127.0.0.1 (the address honest subscribers use in these tests), the
// rest from other loopback addresses, 250 each. They are closed when the
// test ends.
func openIdle(t *testing.T, endpoint, socketType string, n, perIP int) []*zmtptest.Conn {
	t.Helper()
	conns := make([]*zmtptest.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range conns {
		src := "127.0.0.1"
		if i >= perIP {
			src = srcAddr(i - perIP)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := zmtptest.Dial(ctx, endpoint, socketType, src)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return conns
}

// TestIdleConnectionsDoNotKeepSubscriberOut: 1,023 connections that
// completed the ZMTP handshake and then idle on each of the publisher's
// three ports, 256 of them per port from the subscriber's own address
// (its per-address limit), with JoinTimeout an hour. A real subscriber
// still joins, repairs from the recovery endpoint what was published
// before it came, and receives the rest: at each port its connection
// evicted an idle stranger's.
func TestIdleConnectionsDoNotKeepSubscriberOut(t *testing.T) {
	const idle, perIP, before, after = 1023, 256, 500, 500
	lg, logs := observedLogger()
	pub := testPublisher(t, func(c *PublisherConfig) {
		c.JoinTimeout, c.Logger = time.Hour, lg
		c.SlowPolicy = SlowCut // the late joiner repairs over the recovery port, which the test crowds too
	})
	publishN(t, pub, "t", 0, before, make([]byte, 64))
	for _, ep := range []struct{ endpoint, typ string }{
		{pub.Endpoint(), "SUB"}, {pub.SyncEndpoint(), "DEALER"}, {pub.RecoveryEndpoint(), "DEALER"},
	} {
		openIdle(t, ep.endpoint, ep.typ, idle, perIP)
	}
	waitFor(t, func() bool {
		return pub.Stats().Wire.Peers == idle && pub.sync.Stats().Conns == idle && pub.rec.srv.Stats().Conns == idle
	}, "every idle connection in place")

	rec := newRecorder(before + after)
	start := time.Now()
	sub := testSubscriber(t, SubscriberConfig{
		Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "real", StartAt: StartAtEarliest,
	}, rec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	joined := time.Since(start)
	publishN(t, pub, "t", before, after, make([]byte, 64))
	waitDone(t, rec, time.Minute)
	rec.check(t, "subscriber", before+after)
	_, replayed := rec.counts()
	st := pub.Stats()
	syncSt, recSt := pub.sync.Stats(), pub.rec.srv.Stats()
	t.Logf("joined in %v beside %d idle connections per port; %d records repaired; evicted: data %d, sync %d, recovery %d",
		joined.Round(time.Millisecond), idle, replayed, st.Wire.Evicted, syncSt.Evicted, recSt.Evicted)
	if replayed < before {
		t.Errorf("%d records came from the recovery endpoint, want %d", replayed, before)
	}
	if st.Wire.Evicted == 0 || syncSt.Evicted == 0 || recSt.Evicted == 0 {
		t.Errorf("a port let the subscriber in without evicting: data %d, sync %d, recovery %d", st.Wire.Evicted, syncSt.Evicted, recSt.Evicted)
	}
	if st.Wire.Refused != 0 || syncSt.Refused != 0 || recSt.Refused != 0 {
		t.Errorf("refusals: data %+v, sync %+v, recovery %+v", st.Wire, syncSt, recSt)
	}
	if n := countLines(logs, "make room"); n > 4 {
		t.Errorf("%d eviction lines, want at most one per port and 10 s", n)
	}
	if !raceEnabled && joined > time.Second {
		t.Errorf("joined after %v, want within 1 s", joined)
	}
}

// TestIdleDataConnectionsClosedAtJoinTimeout: 1,000 connections that
// complete the ZMTP handshake on the data port and never join are closed
// at JoinTimeout, counted; they cost a few KiB each while they last, and
// nothing once gone.
func TestIdleDataConnectionsClosedAtJoinTimeout(t *testing.T) {
	const n = 1000
	pub := testPublisher(t, func(c *PublisherConfig) { c.JoinTimeout = 2 * time.Second })
	base := heapInUse()
	conns := openIdle(t, pub.Endpoint(), "SUB", n, 0)
	held := heapInUse()
	waitFor(t, func() bool { return pub.Stats().Kicked == n }, "every connection kicked")
	for i, c := range conns {
		if !c.Closed(10 * time.Second) {
			t.Fatalf("connection %d still open after its JoinTimeout", i)
		}
		c.Close()
		conns[i] = nil // the test's side of the memory, too
	}
	waitFor(t, func() bool { return coreState(pub, func(c *pubCore) int { return len(c.conns) }) == 0 }, "the core to forget them")
	after := heapInUse()
	perConn := (int64(held) - int64(base)) / n
	st := pub.Stats()
	t.Logf("heap: %d KiB before, %d KiB with %d idle connections (%d B each, both ends), %d KiB after; kicked %d",
		base>>10, held>>10, n, perConn, after>>10, st.Kicked)
	if st.Wire.Kicked != n || st.Wire.Peers != 0 {
		t.Errorf("wire stats %+v", st.Wire)
	}
	// Both ends are in this process: the test's side holds 8 KiB of
	// buffers per connection, the publisher about 4 KiB.
	if perConn > 24<<10 {
		t.Errorf("%d bytes per idle connection", perConn)
	}
	if grew := int64(after) - int64(base); grew > 2<<20 {
		t.Errorf("heap %d KiB above the start once they are gone", grew>>10)
	}
}

// TestSubscriptionFlood: one connection sends 40,000 subscription
// prefixes. It is cut at MaxSubscriptions, counted, and the publisher
// serves a real subscriber as before. With the limit raised, the cost of
// a prefix does not grow with the prefixes already there: 40,000 cost
// about ten times what 4,000 cost, not a hundred.
func TestSubscriptionFlood(t *testing.T) {
	const flood = 40_000
	pub := testPublisher(t, nil)
	c := zmtptest.MustDial(t, pub.Endpoint(), "SUB", "")
	for i := 0; i < flood; i++ {
		c.QueueSubscribe(fmt.Sprintf("prefix-%06d", i))
		if i%1000 == 999 {
			if c.Flush() != nil {
				break // cut: the writes fail
			}
		}
	}
	_ = c.Flush()
	if !c.Closed(30 * time.Second) {
		t.Fatal("the connection is still open")
	}
	st := pub.Stats()
	if st.Wire.TooManySubscriptions != 1 {
		t.Fatalf("wire stats %+v: want one connection cut for MaxSubscriptions", st.Wire)
	}
	rec := newRecorder(100)
	sub := testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint()}, rec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, "t", 0, 100, nil)
	waitDone(t, rec, time.Minute)

	// Linear cost, with the limit out of the way.
	var subscribed atomic.Int64
	cost := func(n int) (allocated uint64, took time.Duration) {
		subscribed.Store(0)
		p := testPublisher(t, func(c *PublisherConfig) {
			c.Wire.MaxSubscriptions = flood
			c.Wire.MaxSubscriptionBytes, c.Wire.SubscriptionBudget = 64<<20, 64<<20
			c.Wire.OnEvent = func(ev PeerEvent) {
				if ev.Type == PeerSubscribed {
					subscribed.Add(1)
				}
			}
		})
		c := zmtptest.MustDial(t, p.Endpoint(), "SUB", "")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		for i := 0; i < n; i++ {
			c.QueueSubscribe(fmt.Sprintf("prefix-%06d", i))
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return subscribed.Load() == int64(n) }, "every subscription")
		took = time.Since(start)
		runtime.ReadMemStats(&after)
		// The control topic is not among them: nothing but the
		// subscriptions reached the core.
		if k := coreState(p, func(c *pubCore) int { return len(c.conns) }); k != 1 {
			t.Fatalf("%d data connections", k)
		}
		return after.TotalAlloc - before.TotalAlloc, took
	}
	smallAlloc, smallTook := cost(flood / 10)
	bigAlloc, bigTook := cost(flood)
	ratio := float64(bigAlloc) / float64(smallAlloc)
	t.Logf("%d prefixes: %d KiB allocated in %v; %d prefixes: %d KiB in %v; allocation ratio %.1f", flood/10, smallAlloc>>10, smallTook,
		flood, bigAlloc>>10, bigTook, ratio)
	if ratio > 30 {
		t.Errorf("10x the prefixes cost %.1fx the memory: not linear", ratio)
	}
	_ = envelope.ControlTopic
}
