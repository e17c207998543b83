package wire

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// prefixOf returns a prefix of n bytes that starts with tag.
func prefixOf(tag string, n int) string { return tag + strings.Repeat("x", n-len(tag)) }

// cancelRaw sends ZMTP 3.0 cancel messages for prefixes.
func cancelRaw(t testing.TB, nc net.Conn, prefixes ...string) {
	t.Helper()
	var buf []byte
	for _, p := range prefixes {
		buf = appendMsg(buf, [][]byte{append([]byte{0}, p...)})
	}
	if _, err := nc.Write(buf); err != nil {
		t.Fatal(err)
	}
}

// TestMaxSubscriptionBytes: a connection whose prefixes take more than
// MaxSubscriptionBytes is closed and counted, whatever their number; one
// that cancels what it subscribed gives the bytes back.
func TestMaxSubscriptionBytes(t *testing.T) {
	const size = 4000
	cost := int64(size + SubscriptionOverhead)
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{MaxSubscriptionBytes: 2 * MinSubscriptionBytes, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	churn := dialRawSub(t, p.Endpoint(), "t", 0)
	for i := 0; i < 100; i++ {
		big := prefixOf(fmt.Sprint(i), size)
		subscribeRaw(t, churn, big, big)
		cancelRaw(t, churn, big)
	}
	nc := dialRawSub(t, p.Endpoint(), "n", 0)
	subscribeRaw(t, nc, prefixOf("a", size), prefixOf("b", size))
	waitFor(t, 5*time.Second, "the subscriptions", func() bool { return len(events.of(PeerSubscribed)) == 1+100+3 })
	if st := p.Stats(); st.SubscriptionBytes != 2*cost+2*(1+SubscriptionOverhead) || st.TooManySubscriptions != 0 {
		t.Fatalf("stats %+v: want %d subscription bytes, nothing cut", st, 2*cost+2*(1+SubscriptionOverhead))
	}
	subscribeRaw(t, nc, prefixOf("c", size))
	waitFor(t, 5*time.Second, "the disconnection", func() bool { return len(events.of(PeerDisconnected)) == 1 })
	if d := events.of(PeerDisconnected)[0]; !errors.Is(d.Err, ErrTooManySubscriptions) || !strings.Contains(d.Err.Error(), "bytes") {
		t.Errorf("disconnected with %v, want ErrTooManySubscriptions for bytes", d.Err)
	}
	if st := p.Stats(); st.TooManySubscriptions != 1 || st.SubscriptionBytes != 1+SubscriptionOverhead {
		t.Errorf("stats %+v: want one connection cut and the churner's %d bytes left", st, 1+SubscriptionOverhead)
	}
}

// TestSubscriptionBudgetEvictsLargestStranger: with the subscriptions of
// all connections at SubscriptionBudget, the subscription that takes
// them above it closes the connection holding the most among those the
// application lets go, never one it keeps (a joined subscriber), and
// when none may go, the subscribing connection itself.
func TestSubscriptionBudgetEvictsLargestStranger(t *testing.T) {
	const size = 4000
	cost := int64(size + SubscriptionOverhead)
	var mu sync.Mutex
	keep := map[ConnID]bool{}
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{
		MaxSubscriptionBytes: 4 * MinSubscriptionBytes, SubscriptionBudget: int(6 * cost), OnEvent: events.add,
		Evictable: func(id ConnID) bool { mu.Lock(); defer mu.Unlock(); return !keep[id] },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	subscribed := func(n int) {
		t.Helper()
		waitFor(t, 5*time.Second, "the subscriptions", func() bool { return len(events.of(PeerSubscribed)) == n })
	}
	dial := func(src, first string) (net.Conn, ConnID) {
		n := len(events.of(PeerSubscribed))
		nc := dialFrom(t, src, p.Addr().String())
		if _, err := handshake(nc, zmq4.Sub, nil, false, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		subscribeRaw(t, nc, first)
		subscribed(n + 1)
		evs := events.of(PeerSubscribed)
		return nc, evs[len(evs)-1].Conn
	}
	gone := func() []string {
		var out []string
		for _, d := range events.of(PeerDisconnected) {
			if !errors.Is(d.Err, ErrTooManySubscriptions) {
				t.Errorf("%s closed with %v, want ErrTooManySubscriptions", d.Remote, d.Err)
			}
			out = append(out, d.Remote[:strings.LastIndexByte(d.Remote, ':')])
		}
		return out
	}
	// The budget holds 6 prefixes: a joined subscriber holds 1, a
	// stranger 3, another 1.
	joined, jid := dial("127.0.0.2", prefixOf("j1", size))
	mu.Lock()
	keep[jid] = true
	mu.Unlock()
	big, _ := dial("127.0.0.3", prefixOf("b1", size))
	subscribeRaw(t, big, prefixOf("b2", size), prefixOf("b3", size))
	subscribed(4)
	small, _ := dial("127.0.0.4", prefixOf("s1", size))
	// The joined subscriber's second prefix fills the budget, its third
	// takes it over: the largest stranger goes.
	subscribeRaw(t, joined, prefixOf("j2", size), prefixOf("j3", size))
	waitFor(t, 5*time.Second, "an eviction", func() bool { return len(events.of(PeerDisconnected)) == 1 })
	if g := gone(); g[0] != "127.0.0.3" {
		t.Fatalf("closed %v, want the big stranger", g)
	}
	if st := p.Stats(); st.SubscriptionEvicted != 1 || st.SubscriptionBytes != 4*cost {
		t.Fatalf("stats %+v: want one eviction and 4 prefixes held", st)
	}
	// The small stranger, now the largest that may go, takes the budget
	// over itself: it goes.
	subscribeRaw(t, joined, prefixOf("j4", size))
	subscribeRaw(t, small, prefixOf("s2", size), prefixOf("s3", size))
	waitFor(t, 5*time.Second, "a second eviction", func() bool { return len(events.of(PeerDisconnected)) == 2 })
	// A second joined subscriber goes over with nobody left to evict:
	// it goes itself, and the first keeps everything.
	other, oid := dial("127.0.0.5", prefixOf("o1", size))
	mu.Lock()
	keep[oid] = true
	mu.Unlock()
	subscribeRaw(t, other, prefixOf("o2", size), prefixOf("o3", size))
	waitFor(t, 5*time.Second, "a third eviction", func() bool { return len(events.of(PeerDisconnected)) == 3 })
	if g := gone(); strings.Join(g, " ") != "127.0.0.3 127.0.0.4 127.0.0.5" {
		t.Errorf("closed %v: want the big stranger, the small one, then the second joined subscriber", g)
	}
	if st := p.Stats(); st.SubscriptionEvicted != 3 || st.SubscriptionBytes != 4*cost || st.Peers != 1 {
		t.Errorf("stats %+v: want three evictions and the first joined subscriber's 4 prefixes held", st)
	}
}
