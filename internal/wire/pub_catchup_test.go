package wire

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestBehindOfferWritable: a connection that does not read passes
// BehindBytes and is reported once by TakeBehind; moved to a class Send
// does not address, it gets no live message; Offer queues for it alone
// without waiting or cutting it and refuses beyond MaxQueueBytes; once it
// reads, OnWritable tells the application it may Offer more.
func TestBehindOfferWritable(t *testing.T) {
	var writable atomic.Int32
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{
		QueueBytes: 32 << 10, MaxQueueBytes: 64 << 10, SendBuffer: 4 << 10, SlowTimeout: 10 * time.Second,
		Pace: PaceFastest, BehindBytes: 16 << 10,
		OnWritable: func(ConnID) { writable.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	nc, id, ctx, payload := sendUntilBehind(t, p)
	if again := p.TakeBehind(nil); len(again) != 0 {
		t.Fatalf("reported twice: %v", again)
	}
	p.SetClass(id, 2)
	before, _ := p.Queued(id)
	if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), payload}, To: Classes(0)}); err != nil {
		t.Fatal(err)
	}
	if after, _ := p.Queued(id); after > before {
		t.Fatalf("a live Send reached a connection of another class: %d -> %d bytes", before, after)
	}
	// Offer fills up to MaxQueueBytes and then refuses, without a cut.
	refused := false
	for i := 0; i < 200 && !refused; i++ {
		_, ok := p.Offer(id, &Msg{Frames: [][]byte{[]byte("t"), payload}})
		refused = !ok
	}
	if !refused || p.Stats().SlowConsumers != 0 || p.Peers() != 1 {
		t.Fatalf("Offer: refused %v, slow consumers %d, peers %d", refused, p.Stats().SlowConsumers, p.Peers())
	}
	if _, ok := p.Offer(id, &Msg{Frames: [][]byte{[]byte("other"), payload}}); ok {
		t.Fatal("Offer queued a topic the connection does not subscribe to")
	}
	go func() { _, _ = countMessages(nc, nil) }()
	if !pollUntil(5*time.Second, func() bool { return writable.Load() > 0 }) {
		t.Fatal("OnWritable was not called once the subscriber read")
	}
}

func firstPeer(p *Pub) ConnID {
	for _, pr := range *p.snap.Load() {
		return pr.id
	}
	return 0
}

func allSubscribed(p *Pub, topic string) bool {
	for _, pr := range *p.snap.Load() {
		if !pr.subs.match([]byte(topic)) {
			return false
		}
	}
	return true
}

// TestPaceSlowest: Send waits while any matching connection is above
// QueueBytes, so a subscriber that does not read holds it up.
func TestPaceSlowest(t *testing.T) {
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{QueueBytes: 8 << 10, MaxQueueBytes: 1 << 20, SendBuffer: 4 << 10,
		SlowTimeout: 10 * time.Second, Pace: PaceSlowest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	fast := dialRawSub(t, p.Endpoint(), "t", 0)
	go func() { _, _ = countMessages(fast, nil) }()
	dialRawSub(t, p.Endpoint(), "t", 4<<10) // never reads
	if !pollUntil(5*time.Second, func() bool { return p.Peers() == 2 && allSubscribed(p, "t") }) {
		t.Fatal("no subscribers")
	}
	ctx := testCtx(t, 300*time.Millisecond)
	payload := make([]byte, 1<<10)
	var err2 error
	for i := 0; i < 2000 && err2 == nil; i++ {
		err2 = p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), payload}})
	}
	if err2 == nil || p.Stats().Waits == 0 {
		t.Fatalf("Send under PaceSlowest did not wait for the subscriber that does not read: %v, waits %d", err2, p.Stats().Waits)
	}
}

// TestBehindIsNotCutBySlowTimeout: a connection TakeBehind reported is
// off the live stream, fed at its own pace: its writes may wait longer
// than SlowTimeout without a cut, since it holds no more than it was sent
// and nobody waits for it. Once a live Send queues for it again, a write
// that makes no progress cuts it as before.
func TestBehindIsNotCutBySlowTimeout(t *testing.T) {
	const slow = 300 * time.Millisecond
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{
		QueueBytes: 32 << 10, MaxQueueBytes: 1 << 20, SendBuffer: 4 << 10, SlowTimeout: slow,
		Pace: PaceFastest, BehindBytes: 16 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	_, id, ctx, payload := sendUntilBehind(t, p) // its subscriber never reads
	p.SetClass(id, 2)
	for i := 0; i < 128; i++ {
		if _, ok := p.Offer(id, &Msg{Frames: [][]byte{[]byte("t"), payload}}); !ok {
			t.Fatal("Offer refused below MaxQueueBytes")
		}
	}
	// Several SlowTimeouts with the writer stuck (more queued than the
	// kernel takes): still connected.
	deadline := time.Now().Add(4 * slow)
	for time.Now().Before(deadline) {
		if q, _ := p.Queued(id); p.Peers() != 1 || p.Stats().SlowConsumers != 0 || q == 0 {
			t.Fatalf("cut while off the live stream, or not stuck: peers %d, slow consumers %d, queued %d", p.Peers(), p.Stats().SlowConsumers, q)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Back on the live stream, the rule applies again.
	p.SetClass(id, 0)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_ = p.Send(short, &Msg{Frames: [][]byte{[]byte("t"), payload}, To: Classes(0)}) // waits: the only subscriber is full
	if !pollUntil(10*time.Second, func() bool { return p.Stats().SlowConsumers == 1 }) {
		t.Fatalf("a stalled connection back on the live stream was not cut: slow consumers %d", p.Stats().SlowConsumers)
	}
}

// sendUntilBehind connects a subscriber to "t" that reads nothing and
// sends 1 KiB messages until p reports it behind (BehindBytes); it
// returns the subscriber's connection, its id, a test context and the
// payload.
func sendUntilBehind(t *testing.T, p *Pub) (net.Conn, ConnID, context.Context, []byte) {
	t.Helper()
	nc := dialRawSub(t, p.Endpoint(), "t", 4<<10)
	if !pollUntil(5*time.Second, func() bool { return p.Peers() == 1 && p.Subscribed(firstPeer(p), []byte("t")) }) {
		t.Fatal("no subscriber")
	}
	id := firstPeer(p)
	ctx := testCtx(t, 10*time.Second)
	payload := make([]byte, 1<<10)
	var behind []ConnID
	for i := 0; i < 200 && len(behind) == 0; i++ {
		if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), payload}, To: Classes(0)}); err != nil {
			t.Fatal(err)
		}
		behind = p.TakeBehind(behind[:0])
	}
	if len(behind) != 1 || behind[0] != id {
		t.Fatalf("TakeBehind = %v, want [%d]", behind, id)
	}
	return nc, id, ctx, payload
}
