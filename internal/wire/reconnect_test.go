package wire

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// restartMsg is a message of the restart scenario: which publisher
// incarnation sent it and its sequence there.
func restartMsg(topic string, incarnation, seq uint64) *Msg {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, incarnation)
	binary.BigEndian.PutUint64(b[8:], seq)
	return &Msg{Frames: [][]byte{[]byte(topic), b}}
}

// deliveryLog collects a Sub's deliveries per endpoint.
type deliveryLog struct {
	mu  sync.Mutex
	per map[string][]string // "connected", "disconnected", "a 1 7" (topic incarnation seq)
	n   map[string]int      // messages per endpoint
}

func (l *deliveryLog) add(d Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch d.Kind {
	case Connected:
		l.per[d.Endpoint] = append(l.per[d.Endpoint], "connected")
	case Disconnected:
		l.per[d.Endpoint] = append(l.per[d.Endpoint], "disconnected")
	case Message:
		inc, seq := binary.BigEndian.Uint64(d.Frames[1]), binary.BigEndian.Uint64(d.Frames[1][8:])
		l.per[d.Endpoint] = append(l.per[d.Endpoint], fmt.Sprintf("%s %d %d", d.Frames[0], inc, seq))
		l.n[d.Endpoint]++
	}
}

func (l *deliveryLog) count(ep string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[ep]
}

func (l *deliveryLog) has(ep, item string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.per[ep] {
		if s == item {
			return true
		}
	}
	return false
}

// compress renders a delivery list with runs of consecutive messages of
// one incarnation folded: "connected, a 1 0..99, disconnected, ...".
// It reports an error for any gap, duplicate or reordering in a run.
func compress(items []string) (string, error) {
	var out []string
	var topic string
	var inc, first, last uint64
	run := false
	flush := func() {
		if run {
			out = append(out, fmt.Sprintf("%s %d %d..%d", topic, inc, first, last))
			run = false
		}
	}
	for _, it := range items {
		var tp string
		var i, s uint64
		if _, err := fmt.Sscanf(it, "%s %d %d", &tp, &i, &s); err != nil {
			flush()
			out = append(out, it)
			continue
		}
		if run && tp == topic && i == inc {
			if s != last+1 {
				return "", fmt.Errorf("after %s %d %d came %s", topic, inc, last, it)
			}
			last = s
			continue
		}
		flush()
		topic, inc, first, last, run = tp, i, s, s, true
	}
	flush()
	return strings.Join(out, ", "), nil
}

// TestSubReconnectsAfterPubRestart is defect 4 at the wire level: zmq4's
// Dial gives up after maxRetries and never redials a lost connection
// (and WithAutomaticReconnect redials the last endpoint dialled, not the
// lost one). A wire.Sub connected to two publishers sees one of them
// restart on the same port: it reports Disconnected then Connected for
// that endpoint only, resubscribes by itself, and receives the new
// incarnation's messages with no duplicate and no gap, while the other
// stream goes on untouched.
func TestSubReconnectsAfterPubRestart(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	p1, err := Listen("tcp://127.0.0.1:0", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ep1 := p1.Endpoint()
	p2, err := Listen("tcp://127.0.0.1:0", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	ep2 := p2.Endpoint()

	sub := NewSub(SubConfig{ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}, "")
	defer sub.Close()
	dl := &deliveryLog{per: map[string][]string{}, n: map[string]int{}}
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			d, err := sub.Recv(ctx)
			if err != nil {
				return
			}
			dl.add(d)
		}
	}()
	for _, ep := range []string{ep1, ep2} {
		if err := sub.Connect(ep); err != nil {
			t.Fatal(err)
		}
	}
	subscribed := func(p *Pub) func() bool {
		return func() bool {
			s := *p.snap.Load()
			return len(s) == 1 && s[0].subs.match(nil)
		}
	}
	waitFor(t, 5*time.Second, "both subscriptions", func() bool { return subscribed(p1)() && subscribed(p2)() })

	const n = 500
	var seq2 uint64
	send2 := func(k int) {
		for i := 0; i < k; i++ {
			if err := p2.Send(ctx, restartMsg("b", 1, seq2)); err != nil {
				t.Fatal(err)
			}
			seq2++
		}
	}
	for i := uint64(0); i < n; i++ {
		if err := p1.Send(ctx, restartMsg("a", 1, i)); err != nil {
			t.Fatal(err)
		}
	}
	send2(n)
	waitFor(t, 5*time.Second, "the first incarnation's messages", func() bool { return dl.count(ep1) == n && dl.count(ep2) == n })

	p1.Close()
	waitFor(t, 5*time.Second, "the Disconnected delivery", func() bool { return dl.has(ep1, "disconnected") })
	send2(n) // the other publisher is not affected by the outage
	p1, err = Listen(ep1, PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	waitFor(t, 5*time.Second, "the resubscription", subscribed(p1))
	for i := uint64(0); i < n; i++ {
		if err := p1.Send(ctx, restartMsg("a", 2, i)); err != nil {
			t.Fatal(err)
		}
	}
	send2(n)
	waitFor(t, 5*time.Second, "the second incarnation's messages", func() bool { return dl.count(ep1) == 2*n && dl.count(ep2) == 3*n })
	sub.Close()
	<-recvDone

	got1, err1 := compress(dl.per[ep1])
	got2, err2 := compress(dl.per[ep2])
	t.Logf("%s: %s", ep1, got1)
	t.Logf("%s: %s", ep2, got2)
	if err1 != nil || err2 != nil {
		t.Fatalf("out of order or duplicated: %v; %v", err1, err2)
	}
	if want := fmt.Sprintf("connected, a 1 0..%d, disconnected, connected, a 2 0..%d", n-1, n-1); got1 != want {
		t.Errorf("restarted endpoint: got %q, want %q", got1, want)
	}
	if want := fmt.Sprintf("connected, b 1 0..%d", 3*n-1); got2 != want {
		t.Errorf("other endpoint: got %q, want %q", got2, want)
	}
}

// TestBareZmq4SubDoesNotReconnect asserts that zmq4's automatic
// reconnect still dials the wrong endpoint: a zmq4 SUB dialled to two
// publishers redials sck.ep, the endpoint passed to its last Dial, when
// the first one goes away, so it never gets back to the restarted
// publisher and holds two connections to the other one, which delivers
// every message twice. zmq4's readers race on sck.ep when two connections
// drop at once (the race detector reports it), so the scenario runs in a
// child process. If it ever reconnects to the right one, the test fails:
// revisit docs/transport.md, defect 4.
func TestBareZmq4SubDoesNotReconnect(t *testing.T) {
	const name = "TestBareZmq4SubDoesNotReconnect"
	if inChild(name) {
		noReconnectChild(t)
		return
	}
	out := runChild(t, name, 2*time.Minute)
	restarted, ok := evidence(out, "restarted_peers")
	other, _ := evidence(out, "other_peers")
	fromRestarted, _ := evidence(out, "from_restarted")
	dup, _ := evidence(out, "duplicates")
	if !ok {
		t.Fatalf("no evidence from the child:\n%s", out)
	}
	t.Logf("zmq4: peers of the restarted publisher %d, of the other %d; messages from the restarted one %d; duplicates %d", restarted, other, fromRestarted, dup)
	if restarted != 0 || fromRestarted != 0 {
		t.Errorf("zmq4 reconnected to the restarted publisher: the defect is fixed, revisit docs/transport.md, defect 4")
	}
	if other != 2 || dup == 0 {
		t.Errorf("zmq4 no longer redials the other publisher: the behaviour changed, revisit docs/transport.md, defect 4")
	}
}

func noReconnectChild(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	p1, err := Listen("tcp://127.0.0.1:0", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ep1 := p1.Endpoint()
	p2, err := Listen("tcp://127.0.0.1:0", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	ep2 := p2.Endpoint()
	zsub := zmq4.NewSub(context.Background(), zmq4.WithAutomaticReconnect(true), zmq4.WithLogger(log.New(io.Discard, "", 0)))
	defer zsub.Close()
	if err := zsub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{ep1, ep2} {
		if err := zsub.Dial(ep); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[string]int{}
	go func() {
		for {
			m, err := zsub.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
			if len(m.Frames) == 2 && len(m.Frames[1]) == 16 {
				mu.Lock()
				got[fmt.Sprintf("%s %d %d", m.Frames[0], binary.BigEndian.Uint64(m.Frames[1]), binary.BigEndian.Uint64(m.Frames[1][8:]))]++
				mu.Unlock()
			}
		}
	}()
	waitFor(t, 5*time.Second, "subscriptions", func() bool {
		return p1.Peers() == 1 && p2.Peers() == 1 && (*p1.snap.Load())[0].subs.match(nil) && (*p2.snap.Load())[0].subs.match(nil)
	})
	p1.Close()
	p1, err = Listen(ep1, PubConfig{}) // back at once: a working reconnect would find it
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	// zmq4 reconnects as soon as it sees the connection drop; where to is
	// the question.
	if !pollUntil(10*time.Second, func() bool { return p1.Peers() > 0 || p2.Peers() == 2 }) || p1.Peers() > 0 {
		printEvidence("restarted_peers", p1.Peers(), "other_peers", p2.Peers(), "from_restarted", 0, "duplicates", 0)
		return
	}
	waitFor(t, 5*time.Second, "the second subscription", func() bool {
		s := *p2.snap.Load()
		return len(s) == 2 && s[0].subs.match(nil) && s[1].subs.match(nil)
	})
	for i := uint64(0); i < 100; i++ {
		p1.Send(ctx, restartMsg("a", 2, i))
		p2.Send(ctx, restartMsg("b", 1, i))
	}
	// Both of p2's connections take everything: wait for the last message twice.
	waitFor(t, 10*time.Second, "the last message on both connections", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["b 1 99"] == 2
	})
	mu.Lock()
	defer mu.Unlock()
	a, dup := 0, 0
	for k, c := range got {
		if strings.HasPrefix(k, "a ") {
			a += c
		}
		if c > 1 {
			dup += c - 1
		}
	}
	printEvidence("restarted_peers", p1.Peers(), "other_peers", p2.Peers(), "from_restarted", a, "duplicates", dup)
}
