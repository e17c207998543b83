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
			return len(s) == 1 && s[0].subscribed(nil)
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

// TestBareZmq4SubDoesNotReconnect: a zmq4 SUB with WithAutomaticReconnect
// dialled to two publishers; one restarts after an outage longer than
// zmq4's 10 dial retries of 250 ms.
func TestBareZmq4SubDoesNotReconnect(t *testing.T) {
	requireBare(t)
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
	waitFor(t, 5*time.Second, "subscriptions", func() bool { return p1.Peers() == 1 && p2.Peers() == 1 && (*p1.snap.Load())[0].subscribed(nil) })
	p1.Close()
	outage := time.NewTimer(3 * time.Second) // the outage itself, not synchronisation
	<-outage.C
	p1, err = Listen(ep1, PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p1.Close()
	reconnected := pollUntil(3*time.Second, func() bool { return p1.Peers() > 0 })
	for i := uint64(0); i < 100; i++ {
		p1.Send(ctx, restartMsg("a", 2, i))
		p2.Send(ctx, restartMsg("b", 1, i))
	}
	// The end marker on p2, resent until it arrives, bounds the wait.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		p2.Send(ctx, restartMsg("b", 9, 0))
		mu.Lock()
		done = got["b 9 0"] > 0
		mu.Unlock()
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("end marker never arrived")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	a, dup := 0, 0
	for k, c := range got {
		if strings.HasPrefix(k, "a ") {
			a += c
		}
		if c > 1 && !strings.HasPrefix(k, "b 9") {
			dup += c - 1
		}
	}
	t.Logf("reconnected: %v; peers of the restarted publisher: %d, of the other: %d; messages from the restarted one: %d; duplicates: %d", reconnected, p1.Peers(), p2.Peers(), a, dup)
	if a == 0 {
		t.Errorf("zmq4: the SUB never reconnected to the restarted publisher")
	}
	if dup > 0 {
		t.Errorf("zmq4: %d duplicate messages (the automatic reconnect dialled the other endpoint again)", dup)
	}
}
