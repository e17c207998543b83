package wire

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestPeerEventsInOrder: for each connection the events come as
// Connected, Subscribed*, then Disconnected, even for subscribers that
// subscribe and hang up at once, and the events account for every
// connection.
func TestPeerEventsInOrder(t *testing.T) {
	const n = 200
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < n; i++ {
		nc := dialRawSub(t, p.Endpoint(), "t", 0)
		if i%2 == 0 {
			subscribeRaw(t, nc, "u", "t") // a duplicate is not reported
		}
		nc.Close()
	}
	waitFor(t, 10*time.Second, "every disconnection reported", func() bool { return len(events.of(PeerDisconnected)) == n })
	events.mu.Lock()
	defer events.mu.Unlock()
	state := map[ConnID]PeerEventType{}
	subs := map[ConnID]int{}
	for _, ev := range events.events {
		switch prev := state[ev.Conn]; {
		case ev.Type == PeerConnected && prev != 0:
			t.Errorf("conn %d: connected twice", ev.Conn)
		case ev.Type == PeerSubscribed && prev != PeerConnected && prev != PeerSubscribed:
			t.Errorf("conn %d: subscribed after %v", ev.Conn, prev)
		case ev.Type == PeerDisconnected && prev != PeerConnected && prev != PeerSubscribed:
			t.Errorf("conn %d: disconnected after %v", ev.Conn, prev)
		}
		if ev.Type == PeerSubscribed {
			subs[ev.Conn]++
		}
		state[ev.Conn] = ev.Type
	}
	if len(state) != n {
		t.Errorf("events for %d connections, want %d", len(state), n)
	}
	total := 0
	for _, k := range subs {
		total += k
	}
	// Every connection subscribed "t"; half also "u". A subscriber that
	// hangs up at once may be gone before its reader saw the rest.
	if total > n+n/2 {
		t.Errorf("%d PeerSubscribed events for %d connections: duplicates were reported", total, n)
	}
}

// subscribeRaw sends ZMTP 3.0 subscription messages on a raw connection.
func subscribeRaw(t testing.TB, nc net.Conn, prefixes ...string) {
	t.Helper()
	var buf []byte
	for _, p := range prefixes {
		buf = appendMsg(buf, [][]byte{append([]byte{1}, p...)})
	}
	if _, err := nc.Write(buf); err != nil {
		t.Fatal(err)
	}
}

// TestSendToFollowsSubscription: SendTo queues only for a connection
// whose subscriptions match, so a reply to PeerSubscribed (a HELLO with a
// nonce for that connection) reaches that connection alone and never
// before the subscription that asked for it.
func TestSendToFollowsSubscription(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	subscribed := make(chan PeerEvent, 16)
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: func(ev PeerEvent) {
		if ev.Type == PeerSubscribed {
			subscribed <- ev
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := NewSub(SubConfig{}, "data")
	defer a.Close()
	b := NewSub(SubConfig{}, "data")
	defer b.Close()
	for _, s := range []*Sub{a, b} {
		if err := s.Connect(p.Endpoint()); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[ConnID]bool{}
	for len(ids) < 2 {
		select {
		case ev := <-subscribed:
			if string(ev.Prefix) != "data" {
				t.Fatalf("prefix %q", ev.Prefix)
			}
			ids[ev.Conn] = true
		case <-ctx.Done():
			t.Fatal("no subscriptions")
		}
	}
	var first ConnID
	for id := range ids {
		if ok, err := p.SendTo(ctx, id, &Msg{Frames: [][]byte{[]byte("ctl"), []byte("x")}}); ok || err != nil {
			t.Errorf("SendTo on a topic the connection did not subscribe: %v, %v", ok, err)
		}
		if first == 0 {
			first = id
		}
	}
	if ok, err := p.SendTo(ctx, first, &Msg{Frames: [][]byte{[]byte("data"), []byte(fmt.Sprint(first))}}); !ok || err != nil {
		t.Fatalf("SendTo: %v, %v", ok, err)
	}
	if ok, _ := p.SendTo(ctx, 1<<40, &Msg{Frames: [][]byte{[]byte("data")}}); ok {
		t.Error("SendTo an unknown connection queued")
	}
	// Exactly one of the two subscribers gets it.
	if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("data"), []byte("all")}}); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, s := range []*Sub{a, b} {
		for {
			d, err := s.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if d.Kind != Message {
				continue
			}
			if string(d.Frames[1]) == "all" {
				break
			}
			got++
		}
	}
	if got != 1 {
		t.Errorf("%d subscribers got the SendTo message, want 1", got)
	}
}

// TestKick: Kick closes one connection, reports it with ErrKicked and
// the cause, counts it once, and leaves the others alone.
func TestKick(t *testing.T) {
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dialRawSub(t, p.Endpoint(), "t", 0)
	dialRawSub(t, p.Endpoint(), "t", 0)
	waitFor(t, 5*time.Second, "two subscriptions", func() bool { return len(events.of(PeerSubscribed)) == 2 })
	victim := events.of(PeerSubscribed)[0].Conn
	cause := errors.New("no sync handshake")
	p.Kick(victim, cause)
	p.Kick(victim, cause) // gone: nothing
	waitFor(t, 5*time.Second, "the disconnection", func() bool { return len(events.of(PeerDisconnected)) == 1 })
	d := events.of(PeerDisconnected)[0]
	if d.Conn != victim || !errors.Is(d.Err, ErrKicked) || !errors.Is(d.Err, cause) {
		t.Errorf("disconnect %+v; want conn %d with ErrKicked and the cause", d, victim)
	}
	if st := p.Stats(); st.Kicked != 1 || st.Peers != 1 {
		t.Errorf("stats %+v: want one kicked, one left", st)
	}
}

// TestSubscribedPrefixIsACopy: the event owns its Prefix.
func TestSubscribedPrefixIsACopy(t *testing.T) {
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	nc := dialRawSub(t, p.Endpoint(), "a", 0)
	subscribeRaw(t, nc, "b", "c")
	waitFor(t, 5*time.Second, "three subscriptions", func() bool { return len(events.of(PeerSubscribed)) == 3 })
	var got [][]byte
	for _, ev := range events.of(PeerSubscribed) {
		got = append(got, ev.Prefix)
	}
	if !bytes.Equal(bytes.Join(got, nil), []byte("abc")) {
		t.Errorf("prefixes %q", got)
	}
}
