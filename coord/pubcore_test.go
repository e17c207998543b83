package coord

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"
)

// coreHarness drives a pubCore without sockets.
type coreHarness struct {
	t    *testing.T
	c    *pubCore
	now  time.Time
	next connID
}

func newCoreHarness(t *testing.T, mutate func(*PublisherConfig)) *coreHarness {
	t.Helper()
	cfg := DefaultPublisherConfig()
	cfg.Expect = 1
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	now := testTime()
	return &coreHarness{t: t, c: newPubCore(cfg, "tcp://127.0.0.1:5563", now, func() *outMsg { return &outMsg{} }), now: now}
}

// connect opens a data connection that subscribes to the control topic
// and returns it with the nonce of the HELLO it was sent at once.
func (h *coreHarness) connect() (connID, string) {
	h.t.Helper()
	h.next++
	h.c.dataConnected(h.next, "", "", h.now)
	if _, ok := h.c.dataSubscribed(h.next, []byte("prices."), h.now); ok {
		h.t.Fatal("a HELLO for a data subscription")
	}
	nonce, ok := h.c.dataSubscribed(h.next, []byte(envelope.ControlTopic), h.now)
	if !ok {
		h.t.Fatal("no HELLO once the control topic was subscribed")
	}
	return h.next, hex.EncodeToString(nonce[:])
}

func (h *coreHarness) readyMsg(id, nonce string) handshake.Ready {
	return handshake.Ready{V: handshake.Version, Type: handshake.TypeReady, Subscriber: id,
		Publisher: h.c.cfg.ID.String(), Epoch: h.c.cfg.Epoch, Nonce: nonce}
}

// join sends a READY and expects an ACK.
func (h *coreHarness) join(id, nonce string) handshake.Ack {
	h.t.Helper()
	switch r := h.c.ready(h.readyMsg(id, nonce), "", h.now).(type) {
	case handshake.Ack:
		return r
	case handshake.ErrorReply:
		h.t.Fatalf("READY of %s refused: %s %s", id, r.Code, r.Message)
	}
	panic("unreachable")
}

// refused sends a READY and expects the error code.
func (h *coreHarness) refused(id, nonce, code string) {
	h.t.Helper()
	r, ok := h.c.ready(h.readyMsg(id, nonce), "", h.now).(handshake.ErrorReply)
	if !ok || r.Code != code {
		h.t.Fatalf("READY of %s: got %+v, want error %s", id, r, code)
	}
}

func (h *coreHarness) publish(topic string) uint64 {
	h.t.Helper()
	seq, err := h.c.publish(topic, []byte("x"))
	if err != nil {
		h.t.Fatalf("publish %s: %v", topic, err)
	}
	return seq
}

func (h *coreHarness) tick(d time.Duration) tickResult {
	h.now = h.now.Add(d)
	var res tickResult
	h.c.tick(h.now, &res)
	return res
}

// TestCoreSequencing publishes random records on random topics with takes
// at random points: every sequence is handed out once, in order from 1,
// batches come out in accept order holding consecutive sequences of one
// topic, and END's table equals the last sequence taken per topic.
func TestCoreSequencing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 20; round++ {
		h := newCoreHarness(t, func(c *PublisherConfig) {
			c.Expect = 0
			c.MaxBatchRecords = 1 + r.IntN(50)
			c.MaxPending = 1 << 30
		})
		topics := []string{"a", "b", "c", "d"}[:1+r.IntN(4)]
		var accepted []string // topic of every record, in accept order
		handed := map[string]uint64{}
		taken := map[string]uint64{}
		var order []string
		check := func(batches []*outMsg) {
			for _, m := range batches {
				m.finish(0)
				m.eachRun(func(r *outRun) {
					name := r.topic.name
					if r.seq != taken[name]+1 {
						t.Fatalf("round %d: run of %s starts at %d after %d", round, name, r.seq, taken[name])
					}
					taken[name] = r.seq + uint64(r.count) - 1
					for range r.count {
						order = append(order, name)
					}
				})
			}
		}
		for i := 0; i < 3000; i++ {
			if r.IntN(10) == 0 {
				check(h.c.take(nil))
				continue
			}
			topic := topics[r.IntN(len(topics))]
			seq := h.publish(topic)
			if seq != handed[topic]+1 {
				t.Fatalf("round %d: %s got seq %d after %d", round, topic, seq, handed[topic])
			}
			handed[topic] = seq
			accepted = append(accepted, topic)
		}
		check(h.c.take(nil))
		if fmt.Sprint(order) != fmt.Sprint(accepted) {
			t.Fatalf("round %d: batches out of accept order", round)
		}
		h.c.shutdown()
		table, failure := h.c.end(h.now)
		if failure != nil {
			t.Fatal(failure)
		}
		for _, e := range table {
			if e.Seq != taken[e.Topic] || e.Seq != handed[e.Topic] {
				t.Fatalf("round %d: END says %s=%d, taken %d, handed out %d", round, e.Topic, e.Seq, taken[e.Topic], handed[e.Topic])
			}
		}
		if len(table) != len(handed) {
			t.Fatalf("END lists %d topics, %d were published", len(table), len(handed))
		}
	}
}

func TestCoreNothingBeforeQuorum(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 2 })
	if _, err := h.c.publish("a", nil); err != errWaitQuorum {
		t.Fatalf("publish before quorum: %v", err)
	}
	_, n1 := h.connect()
	ack := h.join("s1", n1)
	if ack.Quorum || ack.Joined != 1 || ack.Expect != 2 {
		t.Fatalf("first ACK %+v", ack)
	}
	if _, err := h.c.publish("a", nil); err != errWaitQuorum {
		t.Fatalf("publish at 1 of 2: %v", err)
	}
	gen := h.c.gen
	_, n2 := h.connect()
	if ack := h.join("s2", n2); !ack.Quorum {
		t.Fatalf("second ACK %+v", ack)
	}
	if h.c.gen == gen || h.c.phase != phasePublishing {
		t.Fatal("quorum reached without waking waiters")
	}
	if len(ack.Topics) != 0 {
		t.Fatalf("nothing was published at quorum, yet %+v", ack.Topics)
	}
	h.publish("a")
}

// TestCoreForgedQuorum: a READY counts only with the nonce of a live data
// connection, one subscriber id per nonce, and a subscriber whose
// connection goes away before the start stops counting.
func TestCoreForgedQuorum(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 3 })
	c1, n1 := h.connect()
	h.join("real", n1)
	h.refused("forged-1", n1, handshake.CodeBadNonce) // same nonce, another id
	h.refused("forged-2", hex.EncodeToString(make([]byte, envelope.NonceSize)), handshake.CodeBadNonce)

	c2, n2 := h.connect()
	h.join("other", n2)
	h.c.dataGone(c2, h.now) // hangs up before the start
	if live := h.c.q.live(); live != 1 {
		t.Fatalf("live %d after a subscriber left, want 1", live)
	}
	h.refused("other", n2, handshake.CodeBadNonce) // its nonce died with it
	_, n3 := h.connect()
	h.join("third", n3)
	if h.c.phase != phaseProbing {
		t.Fatal("quorum reached with a subscriber that had left")
	}
	_, n4 := h.connect()
	h.join("other", n4) // back on a new connection
	if h.c.phase != phasePublishing {
		t.Fatal("quorum not reached with three live subscribers")
	}
	h.c.dataGone(c1, h.now) // after the start, a static quorum holds
	if h.c.q.live() != 3 {
		t.Fatalf("live %d after the start", h.c.q.live())
	}
}

func TestCoreFull(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0; c.MaxSubscribers = 2 })
	for _, id := range []string{"a", "b"} {
		_, n := h.connect()
		h.join(id, n)
	}
	_, n := h.connect()
	h.refused("c", n, handshake.CodeFull)
	if h.c.refused[handshake.CodeFull] != 1 {
		t.Fatalf("refusals %v", h.c.refused)
	}
}

// TestCoreResume: a subscriber that comes back under the same id, on a
// new connection or (its first ACK lost) on the same one, is told where it
// first joined: what was published since counts as after its join.
func TestCoreResume(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0 })
	h.publish("a")
	h.c.take(nil)
	c1, n1 := h.connect()
	if ack := h.join("s", n1); ack.Resume != nil || ack.Topics[0].Seq != 1 {
		t.Fatalf("first ACK %+v", ack)
	}
	h.publish("a")
	h.c.take(nil)
	if ack := h.join("s", n1); len(ack.Resume) != 1 || ack.Resume[0].Seq != 1 || ack.Topics[0].Seq != 2 {
		t.Fatalf("a retry on the same connection (the first ACK lost) must say where it joined: %+v", ack)
	}
	for i := 0; i < 4; i++ {
		h.publish("a")
	}
	h.c.take(nil)
	h.c.dataGone(c1, h.now)
	_, n2 := h.connect()
	ack := h.join("s", n2)
	if len(ack.Resume) != 1 || ack.Resume[0] != (handshake.TopicSeq{Topic: "a", Seq: 1}) || ack.Topics[0].Seq != 6 {
		t.Fatalf("rejoin ACK %+v", ack)
	}
}

func TestCoreBye(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0 })
	_, n := h.connect()
	h.join("s", n)
	bye := h.readyMsg("s", "")
	bye.Type = handshake.TypeBye
	if r, ok := h.c.bye(bye, "").(handshake.ErrorReply); !ok || r.Code != handshake.CodeBadNonce {
		t.Fatalf("bye without the nonce: %+v", r)
	}
	bye.Subscriber = "stranger"
	if _, ok := h.c.bye(bye, "").(handshake.ErrorReply); !ok {
		t.Fatal("bye from a stranger accepted")
	}
	if w := h.c.endState(h.now).waiting; len(w) != 1 || w[0] != "s" {
		t.Fatalf("waiting for %v before the bye, want [s]", w)
	}
	bye.Subscriber, bye.Nonce = "s", n
	if _, ok := h.c.bye(bye, "").(handshake.ErrorReply); ok || len(h.c.endState(h.now).waiting) != 0 {
		t.Fatal("bye with the nonce refused")
	}
	bye.Lost = 7
	h.c.bye(bye, "")
	if st := h.c.endState(h.now); st.lossy["s"] != 7 || st.settled {
		t.Fatalf("after a bye with losses, before END: %+v", st)
	}
}

// TestCoreEndWaitsForSubscribers: after END the end settles once every
// subscriber that joined said BYE; one without a connection is waited for
// RepairWindow from END, or from when its connection went away if later,
// then given up; a READY after END is accepted, and its subscriber then
// waited for too.
func TestCoreEndWaitsForSubscribers(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 2; c.RepairWindow = 5 * time.Second })
	ca, na := h.connect()
	h.join("a", na)
	cb, nb := h.connect()
	h.join("b", nb)
	h.c.shutdown()
	if st := h.c.endState(h.now); st.settled {
		t.Fatal("settled before END")
	}
	if _, _, ok := h.c.endIfDone(h.now); !ok {
		t.Fatal("END not taken with nothing left to send")
	}
	endAt := h.now
	h.c.dataGone(cb, h.now.Add(2*time.Second))
	bye := h.readyMsg("a", na)
	bye.Type = handshake.TypeBye
	h.c.bye(bye, "")
	if st := h.c.endState(endAt.Add(6 * time.Second)); st.settled || !st.next.Equal(endAt.Add(7*time.Second)) {
		t.Fatalf("b went away 2 s after END: want a deadline 5 s later, got %+v", st)
	}
	// b comes back on a new connection and rejoins after END.
	cb2, nb2 := h.connect()
	if ack, ok := h.c.ready(h.readyMsg("b", nb2), "", h.now).(handshake.Ack); !ok || ack.Resume == nil {
		t.Fatalf("rejoin after END refused or without resume: %+v", ack)
	}
	cc, nc := h.connect()
	if _, ok := h.c.ready(h.readyMsg("c", nc), "", h.now).(handshake.Ack); !ok {
		t.Fatal("a READY after END refused")
	}
	if st := h.c.endState(endAt.Add(time.Hour)); st.settled {
		t.Fatal("gave up a subscriber that has a connection")
	}
	h.c.dataGone(cb2, endAt.Add(time.Minute))
	h.c.dataGone(cc, endAt.Add(time.Minute))
	st := h.c.endState(endAt.Add(time.Minute + 5*time.Second))
	if !st.settled || !slices.Equal(st.waiting, []string{"b", "c"}) {
		t.Fatalf("after b and c went away for RepairWindow: %+v, want settled, waiting [b c]", st)
	}
	if err := st.err(nil); !errors.Is(err, ErrUnconfirmed) {
		t.Fatalf("err %v, want ErrUnconfirmed", err)
	}
	_ = ca
}

// TestCoreEndWaitsForSlowCut: a subscriber whose connection was cut as a
// slow consumer is not given up after RepairWindow (it learns of the cut
// only once it read what its socket held, and comes back then); the end
// waits for it until the drain gives up, or until it comes back and says
// BYE. One that went away otherwise still gets RepairWindow.
func TestCoreEndWaitsForSlowCut(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 2; c.RepairWindow = 5 * time.Second })
	ca, na := h.connect()
	h.join("a", na)
	cs, ns := h.connect()
	h.join("slow", ns)
	h.c.dataSlow(cs)
	h.c.dataGone(cs, h.now)
	h.c.shutdown()
	if _, _, ok := h.c.endIfDone(h.now); !ok {
		t.Fatal("END not taken with nothing left to send")
	}
	endAt := h.now
	h.c.dataGone(ca, endAt) // a: gone the ordinary way, RepairWindow
	if st := h.c.endState(endAt.Add(time.Hour)); st.settled || !slices.Equal(st.waiting, []string{"a", "slow"}) {
		t.Fatalf("an hour after END: %+v, want still waiting for the subscriber cut as slow", st)
	}
	// It comes back and rejoins: the mark goes with the connection that
	// was cut. When the new one goes away the ordinary way, it gets
	// RepairWindow like anyone.
	cs2, ns2 := h.connect()
	if _, ok := h.c.ready(h.readyMsg("slow", ns2), "", h.now).(handshake.Ack); !ok {
		t.Fatal("the slow subscriber's rejoin after END refused")
	}
	goneAt := endAt.Add(time.Hour)
	h.c.dataGone(cs2, goneAt)
	if st := h.c.endState(goneAt.Add(4 * time.Second)); st.settled {
		t.Fatalf("4 s after its new connection went away: %+v, want waiting", st)
	}
	st := h.c.endState(goneAt.Add(5 * time.Second))
	if !st.settled || !slices.Equal(st.waiting, []string{"a", "slow"}) {
		t.Fatalf("RepairWindow after its new connection went away: %+v, want settled, both given up", st)
	}
}

func TestCoreQuorumTimeout(t *testing.T) {
	for _, policy := range []QuorumPolicy{QuorumFail, QuorumProceed} {
		t.Run(policy.String(), func(t *testing.T) {
			h := newCoreHarness(t, func(c *PublisherConfig) {
				c.Expect, c.QuorumTimeout, c.QuorumPolicy = 2, time.Second, policy
			})
			_, n := h.connect()
			h.join("s", n)
			if d := h.c.nextDeadline(); !d.Equal(h.c.start.Add(time.Second)) && d.After(h.c.start.Add(time.Second)) {
				t.Fatalf("next deadline %v is after the quorum timeout", d)
			}
			h.tick(999 * time.Millisecond)
			if h.c.phase != phaseProbing {
				t.Fatal("decided before the timeout")
			}
			h.tick(time.Millisecond)
			_, err := h.c.publish("a", nil)
			var qe *QuorumError
			switch {
			case policy == QuorumFail && (!errors.As(err, &qe) || qe.Joined != 1 || qe.Expect != 2):
				t.Fatalf("policy fail: publish = %v", err)
			case policy == QuorumProceed && err != nil:
				t.Fatalf("policy proceed: publish = %v", err)
			}
			h.c.shutdown()
			if _, failure := h.c.end(h.now); (failure != nil) != (policy == QuorumFail) {
				t.Fatalf("END failure %v under %v", failure, policy)
			}
		})
	}
}

// TestCoreSettle: quorum "all" is never judged before Settle, however few
// members have gossiped in by then.
func TestCoreSettle(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) {
		c.Expect, c.Quorum, c.Gossip, c.Settle = 0, QuorumRule{Kind: QuorumAll}, &GossipConfig{}, 2*time.Second
	})
	h.c.setMembers(ids("a"), h.now)
	_, n := h.connect()
	h.join("a", n)
	h.tick(time.Second)
	if h.c.phase != phaseProbing {
		t.Fatal("quorum all judged before settle with one member")
	}
	h.c.setMembers(ids("a", "b"), h.now)
	h.tick(time.Second)
	if h.c.phase != phaseProbing {
		t.Fatal("quorum all reached with 1 of 2 members")
	}
	_, n = h.connect()
	h.join("b", n)
	if h.c.phase != phasePublishing {
		t.Fatal("quorum all not reached with both members")
	}
}

func TestCoreLostPause(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) {
		c.Expect, c.Quorum, c.Gossip, c.QuorumLost = 0, QuorumRule{Kind: QuorumCount, N: 1}, &GossipConfig{}, LostPause
	})
	h.c.setMembers(ids("a"), h.now)
	_, n := h.connect()
	h.join("a", n)
	h.tick(3 * time.Second)
	h.publish("t")
	gen := h.c.gen
	h.c.setMembers(ids(), h.now)
	if _, err := h.c.publish("t", nil); err != errPaused || h.c.gen == gen {
		t.Fatalf("publish after the quorum was lost: %v", err)
	}
	h.c.setMembers(ids("a"), h.now)
	h.publish("t")
}

// TestCoreHeartbeat: heartbeats carry every changed topic and repeat the
// unchanged ones round-robin, so every topic is repeated within
// len(topics)/heartbeatTopics beats.
func TestCoreHeartbeat(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0 })
	const topics = 3000
	for i := 0; i < topics; i++ {
		h.publish(fmt.Sprint("t", i))
	}
	h.c.take(nil)
	hb := h.tick(h.c.cfg.HeartbeatInterval).heartbeat
	if len(hb) != topics {
		t.Fatalf("first heartbeat lists %d topics, %d changed", len(hb), topics)
	}
	seen := map[string]int{}
	for beat := 0; beat < 3; beat++ {
		hb := h.tick(h.c.cfg.HeartbeatInterval).heartbeat
		if len(hb) > heartbeatTopics {
			t.Fatalf("an idle heartbeat lists %d topics", len(hb))
		}
		for _, e := range hb {
			seen[e.Topic]++
		}
	}
	if len(seen) != topics {
		t.Fatalf("%d of %d topics repeated in 3 idle heartbeats", len(seen), topics)
	}
}

func TestCoreHelloAndJoinTimeout(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 1; c.JoinTimeout = 10 * time.Second })
	conn, _ := h.connect()
	var hellos int
	for i := 0; i < 100; i++ {
		res := h.tick(100 * time.Millisecond)
		hellos += len(res.hellos)
		if len(res.kick) > 0 {
			if res.kick[0] != conn || h.now.Sub(h.c.start) != 10*time.Second {
				t.Fatalf("kicked %v at %v", res.kick, h.now.Sub(h.c.start))
			}
			break
		}
	}
	// 50 ms doubling to 1 s over 10 s: far fewer than one per tick.
	if hellos == 0 || hellos > 15 {
		t.Fatalf("%d HELLOs repeated over 10 s", hellos)
	}
	_, n := h.connect()
	h.join("s", n)
	if res := h.tick(time.Minute); len(res.kick) != 0 || len(res.hellos) != 0 {
		t.Fatalf("a joined connection was kicked or probed, or a kicked one kicked again: %+v", res)
	}
}

func TestCoreLimits(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0; c.MaxTopics = 2; c.MaxPending = 12 })
	h.publish("a")
	h.publish("b")
	if _, err := h.c.publish("c", []byte("x")); !errors.Is(err, ErrTooManyTopics) {
		t.Fatalf("third topic: %v", err)
	}
	h.publish("a")
	if _, err := h.c.publish("a", []byte("x")); err != errWaitSpace {
		t.Fatalf("over MaxPending: %v", err)
	}
	batches := h.c.take(nil)
	gen := h.c.gen
	for _, m := range batches {
		h.c.sent(m.bytes)
	}
	if h.c.gen == gen || h.c.pending != 0 {
		t.Fatalf("pending %d after everything was sent", h.c.pending)
	}
	h.c.shutdown()
	if _, err := h.c.publish("a", nil); err != ErrClosed {
		t.Fatalf("publish after shutdown: %v", err)
	}
}

// TestCoreProtocol11 pins the 1.1 answers: hex of either case, BYE's
// codes, and topics that JSON carries exactly.
func TestCoreProtocol11(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0 })
	_, n := h.connect()
	r := h.readyMsg("s", strings.ToUpper(n))
	r.Publisher = strings.ToUpper(r.Publisher)
	if _, ok := h.c.ready(r, "", h.now).(handshake.Ack); !ok {
		t.Fatalf("READY in upper-case hex refused: %+v", h.c.ready(r, "", h.now))
	}
	bye := r
	bye.Type = handshake.TypeBye
	for _, tc := range []struct {
		name string
		edit func(*handshake.Ready)
		code string
	}{
		{"another epoch", func(b *handshake.Ready) { b.Epoch++ }, handshake.CodeWrongPublisher},
		{"never joined", func(b *handshake.Ready) { b.Subscriber = "stranger" }, handshake.CodeBadNonce},
		{"another nonce", func(b *handshake.Ready) { b.Nonce = strings.Repeat("0", 32) }, handshake.CodeBadNonce},
	} {
		b := bye
		tc.edit(&b)
		if e, ok := h.c.bye(b, "").(handshake.ErrorReply); !ok || e.Code != tc.code {
			t.Errorf("bye, %s: got %+v, want %s", tc.name, h.c.bye(b, ""), tc.code)
		}
	}
	if _, ok := h.c.bye(bye, "").(handshake.ErrorReply); ok || len(h.c.endState(h.now).waiting) != 0 {
		t.Fatal("bye in upper-case hex refused")
	}
	if e := h.c.refuse(handshake.CodeVersion, "v2"); len(e.Versions) == 0 {
		t.Fatal("a version error without the versions")
	}
	for _, topic := range []string{"bad\xff", "tab\there"} {
		if _, err := h.c.publish(topic, nil); !errors.Is(err, ErrBadTopic) {
			t.Errorf("publish on %q: %v", topic, err)
		}
	}
}

// TestCoreLingerAfterEnd: with LingerAfterEnd the end settles no earlier
// than that long after END, also when nobody joined; without it, at END.
func TestCoreLingerAfterEnd(t *testing.T) {
	for _, linger := range []time.Duration{0, 30 * time.Second} {
		h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0; c.LingerAfterEnd = linger })
		h.c.shutdown()
		if _, _, ok := h.c.endIfDone(h.now); !ok {
			t.Fatal("END not taken")
		}
		st := h.c.endState(h.now)
		if linger == 0 {
			if !st.settled {
				t.Fatalf("no linger: not settled at END: %+v", st)
			}
			continue
		}
		if st.settled || !st.next.Equal(h.now.Add(linger)) {
			t.Fatalf("linger %v: %+v at END", linger, st)
		}
		if st := h.c.endState(h.now.Add(linger)); !st.settled {
			t.Fatalf("linger %v: not settled after it: %+v", linger, st)
		}
	}
}
