package coord

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/ratelog"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/internal/zmtptest"
)

func TestSubKinds(t *testing.T) {
	ctl := envelope.ControlTopic
	for _, tc := range []struct {
		topics []string
		prefix string
		want   subKind
	}{
		{nil, "", subControl | subData | subCovers},
		{nil, ctl, subControl},
		{nil, ctl[:1], subControl},
		{nil, "\x00other", 0},
		{nil, "a", subData},
		{[]string{"ab", "ac"}, "a", subData | subCovers},
		{[]string{"ab", "ac"}, "ab", subData},
		{[]string{"ab"}, "abc", subData},
	} {
		if got := subKinds(tc.topics, []byte(tc.prefix)); got != tc.want {
			t.Errorf("subKinds(%q, %q) = %b, want %b", tc.topics, tc.prefix, got, tc.want)
		}
	}
}

// TestConnEventsBounded: whatever a connection subscribes, cancels and
// subscribes again, the queue holds at most one subscription event of
// each kind for it; a connection gone before take leaves nothing; the
// order of what is left is the socket's.
func TestConnEventsBounded(t *testing.T) {
	q := newConnEvents(nil, ratelog.New(nil, 0))
	ev := func(typ wire.PeerEventType, conn wire.ConnID, prefix string) wire.PeerEvent {
		return wire.PeerEvent{Type: typ, Conn: conn, Prefix: []byte(prefix)}
	}
	q.push(ev(wire.PeerConnected, 1, ""))
	for i := 0; i < 10_000; i++ {
		q.push(ev(wire.PeerSubscribed, 1, fmt.Sprintf("data-%d", i)))
	}
	q.push(ev(wire.PeerSubscribed, 1, envelope.ControlTopic))
	q.push(ev(wire.PeerSubscribed, 1, envelope.ControlTopic[:2]))
	q.push(ev(wire.PeerSubscribed, 1, ""))
	// Connection 2 comes and goes before run looks.
	q.push(ev(wire.PeerConnected, 2, ""))
	q.push(ev(wire.PeerSubscribed, 2, "x"))
	q.push(ev(wire.PeerDisconnected, 2, ""))
	if n := q.len(); n != 4+2 {
		t.Fatalf("%d events queued, want 6 (two of them dropped)", n)
	}
	got := q.take(nil)
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, fmt.Sprintf("%d:%v:%q", e.Conn, e.Type, e.Prefix))
	}
	want := []string{`1:connected:""`, `1:subscribed:"data-0"`, fmt.Sprintf("1:subscribed:%q", envelope.ControlTopic), `1:subscribed:""`}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Fatalf("took %v, want %v", kinds, want)
	}
	if c := q.coalesced.Load(); c != 9_999+1+3 {
		t.Errorf("%d coalesced, want %d", c, 9_999+1+3)
	}
	// After the take, connection 1 still has its kinds: more churn adds
	// nothing; its hang-up is passed on.
	for i := 0; i < 100; i++ {
		q.push(ev(wire.PeerSubscribed, 1, "again"))
	}
	q.push(ev(wire.PeerDisconnected, 1, ""))
	if got := q.take(nil); len(got) != 1 || got[0].Type != wire.PeerDisconnected {
		t.Fatalf("took %+v, want the hang-up alone", got)
	}
	if len(q.conns) != 0 {
		t.Errorf("%d connections remembered after every hang-up", len(q.conns))
	}
}

// TestConnEventsSameCore: a core fed every event and a core fed what the
// queue lets through, with takes at random points, end in the same
// state for each connection and hand out the same HELLOs.
func TestConnEventsSameCore(t *testing.T) {
	prefixes := []string{"", "a", "ab", "b", envelope.ControlTopic, envelope.ControlTopic[:1], "\x00zz", "abc"}
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		cfg := DefaultPublisherConfig()
		cfg.Expect = 1
		if seed%2 == 1 {
			cfg.Topics = []string{"ab", "ac"}
		}
		cfg = cfg.withDefaults()
		now := testTime()
		newBatch := func() *outMsg { return &outMsg{} }
		all, some := newPubCore(cfg, "", now, newBatch), newPubCore(cfg, "", now, newBatch)
		q := newConnEvents(cfg.Topics, ratelog.New(nil, 0))
		hellosAll, hellosSome := map[connID]int{}, map[connID]int{}
		feed := func(c *pubCore, ev wire.PeerEvent, hellos map[connID]int) {
			id := connID(ev.Conn)
			switch ev.Type {
			case wire.PeerConnected:
				c.dataConnected(id, "", "", now)
			case wire.PeerSubscribed:
				if _, ok := c.dataSubscribed(id, ev.Prefix, now); ok {
					hellos[id]++
				}
			case wire.PeerDisconnected:
				c.dataGone(id, now)
			}
		}
		conns := map[wire.ConnID]bool{}
		next := wire.ConnID(1)
		for step := 0; step < 300; step++ {
			var ev wire.PeerEvent
			switch r := rng.IntN(10); {
			case r == 0 || len(conns) == 0:
				ev = wire.PeerEvent{Type: wire.PeerConnected, Conn: next}
				conns[next] = true
				next++
			case r == 1:
				for id := range conns {
					ev = wire.PeerEvent{Type: wire.PeerDisconnected, Conn: id}
					delete(conns, id)
					break
				}
			default:
				for id := range conns {
					ev = wire.PeerEvent{Type: wire.PeerSubscribed, Conn: id, Prefix: []byte(prefixes[rng.IntN(len(prefixes))])}
					break
				}
			}
			feed(all, ev, hellosAll)
			q.push(ev)
			if rng.IntN(5) == 0 {
				for _, e := range q.take(nil) {
					feed(some, e, hellosSome)
				}
			}
		}
		for _, e := range q.take(nil) {
			feed(some, e, hellosSome)
		}
		// A connection gone before a take never reached the coalesced
		// core: it got no HELLO there, which it could not have read.
		for id, n := range hellosSome {
			if hellosAll[id] != n {
				t.Fatalf("seed %d: connection %d: %d HELLOs fed everything, %d coalesced", seed, id, hellosAll[id], n)
			}
		}
		for id := range all.conns {
			if hellosAll[id] != hellosSome[id] {
				t.Fatalf("seed %d: live connection %d: %d HELLOs fed everything, %d coalesced", seed, id, hellosAll[id], hellosSome[id])
			}
		}
		if all.multiConns != some.multiConns || all.dataConns != some.dataConns || len(all.conns) != len(some.conns) {
			t.Fatalf("seed %d: multi %d/%d, data %d/%d, conns %d/%d", seed,
				all.multiConns, some.multiConns, all.dataConns, some.dataConns, len(all.conns), len(some.conns))
		}
		for id, a := range all.conns {
			b := some.conns[id]
			if b == nil || a.subscribed != b.subscribed || a.dataSub != b.dataSub || a.covers != b.covers || a.multi != b.multi {
				t.Fatalf("seed %d: connection %d: all %+v, coalesced %+v", seed, id, a, b)
			}
		}
	}
}

// TestSubscriptionChurnBounded: an unjoined data connection loops
// SUBSCRIBE and CANCEL of one 4 KB prefix 20,000 times while the run
// loop is held up (the test holds the publisher's lock, as a busy core
// would). The events queued for run stay a handful; every repeat is
// coalesced and counted; once run goes on, a real subscriber joins.
func TestSubscriptionChurnBounded(t *testing.T) {
	const loops = 20_000
	var subscribed atomic.Int64
	pub := testPublisher(t, func(c *PublisherConfig) {
		c.Wire.OnEvent = func(ev PeerEvent) {
			if ev.Type == PeerSubscribed {
				subscribed.Add(1)
			}
		}
	})
	c := zmtptest.MustDial(t, pub.Endpoint(), "SUB", "127.0.0.2")
	big := strings.Repeat("p", 4000)
	pub.mu.Lock()
	held := true
	release := func() {
		if held {
			held = false
			pub.mu.Unlock()
		}
	}
	defer release()
	for i := 0; i < loops; i++ {
		c.Queue(append([]byte{1}, big...))
		c.Queue(append([]byte{0}, big...))
		if i%500 == 499 {
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	maxQueued := 0
	waitFor(t, func() bool {
		maxQueued = max(maxQueued, pub.connEvs.len())
		return subscribed.Load() == loops
	}, "every subscription to reach the socket's events")
	release()
	st := pub.Stats()
	t.Logf("%d SUBSCRIBE/CANCEL loops of a 4 KB prefix: at most %d events queued for run; %d coalesced", loops, maxQueued, st.CoalescedEvents)
	if maxQueued > 6 || st.CoalescedEvents < loops-1 {
		t.Errorf("at most %d queued, %d coalesced: want at most 6 queued and %d coalesced", maxQueued, st.CoalescedEvents, loops-1)
	}
	rec := newRecorder(10)
	sub := testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint()}, rec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, "t", 0, 10, nil)
	waitDone(t, rec, time.Minute)
}
