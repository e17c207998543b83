package coord

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/wire"
)

// These tests pin, at the coord level, what internal/wire does about
// go-zeromq's defects (docs/transport.md): hostile clients on the
// publisher's ports, and a publisher restart.

// transportRecorder is a Handler that keeps what the transport tests
// assert on. Safe to read from the test goroutine.
type transportRecorder struct {
	mu       sync.Mutex
	joined   []uint64          // epochs of EventJoined
	restarts []uint64          // epochs of EventRestart
	msgs     map[uint64]int    // EventMessage per epoch
	next     map[string]uint64 // next seq per epoch/topic
	errs     []string          // order violations
	losses   []Event           // EventLoss
	conns    map[EventType]int // EventConnected, EventDisconnected, EventEnd
}

func newTransportRecorder() *transportRecorder {
	return &transportRecorder{msgs: map[uint64]int{}, next: map[string]uint64{}, conns: map[EventType]int{}}
}

func (r *transportRecorder) handle(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Type {
	case EventJoined:
		r.joined = append(r.joined, ev.Epoch)
	case EventRestart:
		r.restarts = append(r.restarts, ev.Epoch)
	case EventMessage:
		k := fmt.Sprintf("%d/%s", ev.Epoch, ev.Topic)
		if n, ok := r.next[k]; ok && ev.Seq != n && len(r.errs) < 5 {
			r.errs = append(r.errs, fmt.Sprintf("%s: seq %d, want %d", k, ev.Seq, n))
		}
		r.next[k] = ev.Seq + 1
		r.msgs[ev.Epoch]++
	case EventLoss:
		r.losses = append(r.losses, ev)
	case EventConnected, EventDisconnected, EventEnd:
		r.conns[ev.Type]++
	}
}

func (r *transportRecorder) messages(epoch uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[epoch]
}

// garbageBytes are what hostile or confused clients send: an HTTP
// request, a greeting then a data frame, a greeting then a READY whose
// metadata runs past its end, a greeting then a command of 2^45 bytes.
// The last two crashed the process before internal/wire guarded zmq4's
// handshake parser.
func garbageBytes() [][]byte {
	greeting := make([]byte, 64)
	greeting[0], greeting[9], greeting[10] = 0xff, 0x7f, 3
	copy(greeting[12:], "NULL")
	with := func(b ...byte) []byte { return append(append([]byte(nil), greeting...), b...) }
	return [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: syncmq\r\nAccept: */*\r\nUser-Agent: probe/1.0\r\n\r\n"),
		with(0x00, 3, 'a', 'b', 'c'),
		with(0x04, 9, 5, 'R', 'E', 'A', 'D', 'Y', 3, 'a', 'b'),
		with(0x06, 0, 0, 0x20, 0, 0, 0, 0, 0),
	}
}

// TestHandshakeDespiteHostileClients is defect 3 at the coord level: with
// 50 silent TCP connections and a few garbage-sending ones on each of the
// publisher's PUB and sync ports, a new subscriber completes the sync
// handshake within 1 s and receives what is published; the garbage
// connections are closed and counted.
func TestHandshakeDespiteHostileClients(t *testing.T) {
	const idle = 50
	cfg := loopbackConfig()
	cfg.Expect = 1
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Shutdown(context.Background())
	var garbage []net.Conn
	for _, ep := range []string{pub.Endpoint(), pub.SyncEndpoint()} {
		addr, err := wire.SplitEndpoint(ep)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < idle; i++ {
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
		}
		for _, b := range garbageBytes() {
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(b); err != nil {
				t.Fatal(err)
			}
			garbage = append(garbage, nc)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	rec := newTransportRecorder()
	sub, err := NewSubscriber(SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "newcomer", Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ready, cancelReady := context.WithTimeout(ctx, time.Second)
	defer cancelReady()
	if err := sub.WaitReady(ready); err != nil {
		t.Fatalf("handshake with %d silent and %d garbage clients on each port: %v after %v", idle, len(garbageBytes()), err, time.Since(start))
	}
	t.Logf("handshake completed in %v with %d silent and %d garbage clients on each port", time.Since(start).Round(time.Microsecond), idle, len(garbageBytes()))
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := pub.Publish(ctx, "update", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.WaitFor(t, 10*time.Second, "100 messages", func() bool { return rec.messages(pub.Epoch()) == 100 })

	for i, nc := range garbage {
		if err := nc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, nc); transportTimeout(err) {
			t.Errorf("garbage connection %d is still open", i)
		}
	}
	clustertest.WaitFor(t, 5*time.Second, "the PUB port's garbage counted", func() bool {
		return pub.Stats().Wire.HandshakeFailed >= uint64(len(garbageBytes()))
	})
}

func transportTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestPublisherRestart is defect 4 at the coord level: a publisher with
// fixed ports goes away for 10 s and comes back with the same ID and a
// new epoch. zmq4's SUB would have given up after 10 dial retries of
// 250 ms; ours reconnect by themselves, handshake again (the new
// incarnation's quorum is reached by the same subscribers), report
// EventRestart with the new epoch and receive the new messages in order.
func TestPublisherRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s outage")
	}
	const subs, count = 3, 1000
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := DefaultPublisherConfig()
	cfg.Bind = clustertest.FreeEndpoint(t)
	cfg.SyncBind = clustertest.FreeEndpoint(t)
	cfg.RecoveryBind = clustertest.FreeEndpoint(t) // fixed across the restart, like the others
	cfg.ID = envelope.NewID()
	cfg.Expect = subs
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	firstEpoch := pub.Epoch()
	recs := make([]*transportRecorder, subs)
	for i := range recs {
		recs[i] = newTransportRecorder()
		s, err := NewSubscriber(SubscriberConfig{Connect: cfg.Bind, Sync: cfg.SyncBind, ID: fmt.Sprintf("sub-%d", i), Handler: recs[i].handle})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	publish := func(p *Publisher) {
		t.Helper()
		if err := p.WaitQuorum(ctx); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < count; i++ {
			if _, err := p.Publish(ctx, "update", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		clustertest.WaitFor(t, 20*time.Second, "every subscriber to receive the epoch's messages", func() bool {
			for _, r := range recs {
				if r.messages(p.Epoch()) != count {
					return false
				}
			}
			return true
		})
	}
	publish(pub)
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	outage := time.NewTimer(10 * time.Second) // the outage being survived, not synchronisation
	<-outage.C

	restarted := time.Now()
	cfg.Epoch = 0 // a new incarnation: the start time, later than the first
	pub, err = NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Shutdown(context.Background())
	if pub.Epoch() <= firstEpoch {
		t.Fatalf("new epoch %d is not after %d", pub.Epoch(), firstEpoch)
	}
	publish(pub)
	t.Logf("after the restart, quorum and %d messages to each of %d subscribers in %v", count, subs, time.Since(restarted).Round(time.Millisecond))

	for i, r := range recs {
		r.mu.Lock()
		t.Logf("subscriber %d: joined %v, restarts %v, messages %v, connection events %v", i, r.joined, r.restarts, r.msgs, r.conns)
		if len(r.restarts) != 1 || r.restarts[0] != pub.Epoch() {
			t.Errorf("subscriber %d: restarts %v, want one with epoch %d", i, r.restarts, pub.Epoch())
		}
		if len(r.joined) != 2 || r.joined[0] != firstEpoch || r.joined[1] != pub.Epoch() {
			t.Errorf("subscriber %d: joined %v, want epochs %d then %d", i, r.joined, firstEpoch, pub.Epoch())
		}
		if r.conns[EventDisconnected] < 1 || r.conns[EventConnected] < 2 {
			t.Errorf("subscriber %d: connection events %v, want the reconnect", i, r.conns)
		}
		if len(r.errs) > 0 || len(r.losses) > 0 {
			t.Errorf("subscriber %d: order errors %v, losses %+v", i, r.errs, r.losses)
		}
		r.mu.Unlock()
	}
}
