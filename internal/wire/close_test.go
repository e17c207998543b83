package wire

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"go.uber.org/goleak"
)

// drainScenario queues n messages while the subscriber is not reading,
// then calls finish (Drain and Close, or zmq4's Close) while the
// subscriber reads. It returns what the subscriber got before its
// connection ended, and how many it had not received when finish began.
func drainScenario(t *testing.T, pub testPublisher, subscribed func() bool, n int, finish func()) (got, pending int, errs []string) {
	ctx := testCtx(t, time.Minute)
	sub := NewSub(SubConfig{}, "t")
	defer sub.Close()
	if err := sub.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("got %+v, %v", d, err)
	}
	waitFor(t, 5*time.Second, "subscription", subscribed)
	for i := 0; i < n; i++ {
		if err := pub.Send(ctx, [][]byte{[]byte("t"), seqPayload(nil, uint64(i), 16)}); err != nil {
			t.Fatal(err)
		}
	}
	var received atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := sub.Recv(ctx)
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			if d.Kind == Disconnected {
				return
			}
			if seq, ok := checkSeq(d.Frames[1]); !ok || seq != uint64(got) {
				if len(errs) < 5 {
					errs = append(errs, fmt.Sprintf("message %d: seq %d, intact %v", got, seq, ok))
				}
			}
			got++
			received.Add(1)
		}
	}()
	pending = n - int(received.Load())
	finish()
	<-done
	return got, pending, errs
}

// TestDrainDeliversEverything is defect 6, first half: zmq4's Close
// closes the connections while its writer goroutine still holds queued
// messages, so they are lost. wire.Pub.Drain writes everything queued,
// half-closes and waits for the subscriber to hang up: 100,000 messages
// queued in front of a subscriber that was not reading all arrive.
func TestDrainDeliversEverything(t *testing.T) {
	const n = 100_000
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{QueueBytes: 16 << 20, SlowTimeout: 20 * time.Second, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, pending, errs := drainScenario(t, wirePub{p}, func() bool { return p.Peers() == 1 && (*p.snap.Load())[0].subscribed([]byte("t")) }, n, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Drain(ctx); err != nil {
			t.Errorf("Drain: %v", err)
		}
		p.Close()
	})
	t.Logf("%d of %d messages not yet received when Drain began; subscriber received %d", pending, n, got)
	if got != n || len(errs) > 0 {
		t.Errorf("received %d of %d: %v", got, n, errs)
	}
	if d := events.of(PeerDisconnected); len(d) != 1 || d[0].Dropped != 0 || d[0].Err != nil {
		t.Errorf("disconnect events %+v: want one orderly hang-up with nothing dropped", d)
	}
}

// TestBareZmq4CloseLosesQueued: the same on a zmq4 PUB, closed right after
// the last Send returned.
func TestBareZmq4CloseLosesQueued(t *testing.T) {
	requireBare(t)
	const n = 100_000
	pub := newZmqPub(t)
	got, pending, errs := drainScenario(t, pub, func() bool { return len(pub.s.(zmq4.Topics).Topics()) == 1 }, n, func() { pub.Close() })
	t.Logf("%d of %d not yet received at Close; subscriber received %d (%v)", pending, n, got, errs)
	if got != n {
		t.Errorf("zmq4: Close lost %d of %d queued messages; there is no way to flush first", n-got, n)
	}
}

// cycle creates a Pub, a Sub, a Server and a Client, uses them, leaves
// some work in flight (a handshake pending on each listener, a handler
// running, a Sub reconnecting to a dead endpoint) and closes everything
// in the given order.
func cycle(t *testing.T, order int) {
	ctx := testCtx(t, 10*time.Second)
	pub, err := Listen("tcp://127.0.0.1:0", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	handlerIn := make(chan struct{}, 1)
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{}, func(ctx context.Context, p Peer, req [][]byte, reply func(...[]byte) error) error {
		if string(req[0]) == "block" {
			handlerIn <- struct{}{}
			<-ctx.Done() // until Close
			return ctx.Err()
		}
		return reply(req...)
	})
	if err != nil {
		t.Fatal(err)
	}
	sub := NewSub(SubConfig{ReconnectMin: time.Millisecond}, "t")
	if err := sub.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	dead := clusterDeadEndpoint(t)
	if err := sub.Connect(dead); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("got %+v, %v", d, err)
	}
	waitFor(t, 5*time.Second, "subscription", func() bool { return pub.Peers() == 1 && (*pub.snap.Load())[0].subscribed([]byte("t")) })
	if err := pub.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Message {
		t.Fatalf("got %+v, %v", d, err)
	}
	c, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: time.Second})
	if _, err := c.Request(ctx, [][]byte{[]byte("echo")}); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	c2, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: 5 * time.Second, Attempts: 1})
	go func() {
		_, err := c2.Request(ctx, [][]byte{[]byte("block")})
		blocked <- err
	}()
	<-handlerIn
	for _, addr := range []net.Addr{pub.Addr(), srv.Addr()} {
		nc, err := net.Dial("tcp", addr.String()) // never handshakes
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
	}
	closers := []func(){func() { pub.Close() }, func() { sub.Close() }, func() { srv.Close() }, func() { c.Close() }}
	for i := range closers {
		closers[(i+order)%len(closers)]()
	}
	if err := <-blocked; err == nil {
		t.Error("request to a closed server succeeded")
	}
	c2.Close()
}

// clusterDeadEndpoint returns an endpoint nobody listens on.
func clusterDeadEndpoint(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "tcp://" + ln.Addr().String()
	ln.Close()
	return ep
}

// TestCloseLeavesNoGoroutines is defect 6, second half: zmq4's Close
// leaves its PUB writer (pubMWriter.run) and other goroutines running.
// Creating, using and closing every wire socket type 40 times, in
// rotating close orders and with work in flight, leaves no goroutine.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for i := 0; i < 40; i++ {
		cycle(t, i)
	}
}

// TestBareZmq4CloseLeaks counts the goroutines that 20 closed zmq4 PUB,
// SUB, REP and REQ sockets leave behind.
func TestBareZmq4CloseLeaks(t *testing.T) {
	requireBare(t)
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		ctx := context.Background()
		pub := zmq4.NewPub(ctx)
		if err := pub.Listen("tcp://127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		sub := zmq4.NewSub(ctx)
		if err := sub.Dial("tcp://" + pub.Addr().String()); err != nil {
			t.Fatal(err)
		}
		rep := zmq4.NewRep(ctx)
		if err := rep.Listen("tcp://127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		req := zmq4.NewReq(ctx)
		if err := req.Dial("tcp://" + rep.Addr().String()); err != nil {
			t.Fatal(err)
		}
		for _, s := range []zmq4.Socket{req, rep, sub, pub} {
			s.Close()
		}
	}
	var leaked int
	pollUntil(2*time.Second, func() bool {
		leaked = runtime.NumGoroutine() - before
		return leaked <= 0
	})
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	kinds := map[string]int{}
	for _, g := range strings.Split(stacks, "\n\n") {
		if i := strings.Index(g, "github.com/go-zeromq/zmq4."); i >= 0 {
			fn, _, _ := strings.Cut(g[i+len("github.com/go-zeromq/zmq4."):], "(0x")
			kinds[fn]++
		}
	}
	if leaked > 0 {
		t.Errorf("zmq4: %d goroutines left after closing 20 sets of sockets: %v", leaked, kinds)
	}
}
