package coord

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"
)

// connectPrefixes opens a data connection subscribed to prefixes and then
// the control topic, and returns it with its HELLO nonce.
func (h *coreHarness) connectPrefixes(prefixes ...string) (connID, string) {
	h.t.Helper()
	h.next++
	h.c.dataConnected(h.next, "", "", h.now)
	var nonce [envelope.NonceSize]byte
	hellos := 0
	for _, p := range append(prefixes, envelope.ControlTopic) {
		// "" covers the control topic too: the HELLO comes with it.
		if n, ok := h.c.dataSubscribed(h.next, []byte(p), h.now); ok {
			nonce = n
			hellos++
		}
	}
	if hellos != 1 {
		h.t.Fatalf("%d HELLOs, want 1", hellos)
	}
	return h.next, fmt.Sprintf("%x", nonce[:])
}

// joinForms sends a READY that accepts forms and expects an ACK.
func (h *coreHarness) joinForms(id, nonce string, forms ...string) handshake.Ack {
	h.t.Helper()
	r := h.readyMsg(id, nonce)
	r.Forms = forms
	ack, ok := h.c.ready(r, "", h.now).(handshake.Ack)
	if !ok {
		h.t.Fatalf("READY of %s refused", id)
	}
	return ack
}

// TestCoreFormNegotiation: a connection is on the MULTI form exactly when
// its READY accepted it and it subscribed to a prefix of every topic the
// publisher may publish; the ACK says so, and the socket is told once.
func TestCoreFormNegotiation(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0; c.Topics = []string{"prices.eur", "prices.usd"} })
	cases := []struct {
		prefixes []string
		forms    []string
		multi    bool
	}{
		{[]string{"prices."}, []string{handshake.FormMulti}, true},
		{[]string{""}, []string{handshake.FormMulti, "future"}, true},
		{[]string{"prices.eur"}, []string{handshake.FormMulti}, false}, // covers only one announced prefix
		{[]string{"prices.eur", "prices.usd"}, []string{handshake.FormMulti}, false},
		{[]string{"prices."}, nil, false}, // a 1.0 READY
		{[]string{"prices."}, []string{"future"}, false},
	}
	for i, c := range cases {
		conn, nonce := h.connectPrefixes(c.prefixes...)
		ack := h.joinForms(fmt.Sprint("s", i), nonce, c.forms...)
		if ack.Sends(handshake.FormMulti) != c.multi {
			t.Errorf("%v accepting %v: ACK forms %v, want multi %v", c.prefixes, c.forms, ack.Forms, c.multi)
		}
		changes := h.c.takeClassChanges(nil)
		want := []classChange(nil)
		if c.multi {
			want = []classChange{{conn, true}}
		}
		if !slices.Equal(changes, want) {
			t.Errorf("%v: class changes %v, want %v", c.prefixes, changes, want)
		}
	}
	if h.c.multiConns != 2 || h.c.dataConns != 4 {
		t.Fatalf("%d MULTI and %d DATA connections, want 2 and 4", h.c.multiConns, h.c.dataConns)
	}
	h.c.dataGone(1, h.now)
	h.c.dataGone(3, h.now)
	if h.c.multiConns != 1 || h.c.dataConns != 3 {
		t.Fatalf("after two left: %d MULTI and %d DATA connections, want 1 and 3", h.c.multiConns, h.c.dataConns)
	}
}

// TestCoreMultiBatching publishes random records on random topics while a
// connection on the MULTI form is there: batches mix topics, stay within
// MaxBatchBytes and MaxBatchRecords, come out in accept order, and each
// topic's sequences are handed out once, in order, with the tables equal
// to what was taken. Once connections on the DATA form take data, the
// batches say so.
func TestCoreMultiBatching(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 20; round++ {
		h := newCoreHarness(t, func(c *PublisherConfig) {
			c.Expect = 0
			c.MaxBatchRecords = 1 + r.IntN(100)
			c.MaxBatchBytes = 64 + r.IntN(4096)
			c.MaxPending = 1 << 30
		})
		_, nonce := h.connectPrefixes("")
		h.joinForms("multi", nonce, handshake.FormMulti)
		withData := round%2 == 1
		if withData {
			_, n2 := h.connectPrefixes("")
			h.joinForms("plain", n2)
		}
		topics := []string{"a", "b", "c", "d", "e.f"}[:1+r.IntN(5)]
		var accepted, order []string
		taken := map[string]uint64{}
		mixed := 0
		check := func(batches []*outMsg) {
			for _, m := range batches {
				if m.b.Count() > h.c.cfg.MaxBatchRecords {
					t.Fatalf("round %d: %d records, limit %d", round, m.b.Count(), h.c.cfg.MaxBatchRecords)
				}
				size := m.b.Size()
				if m.multi() {
					size += m.index
				}
				if m.b.Count() > 1 && size > h.c.cfg.MaxBatchBytes {
					t.Fatalf("round %d: %d bytes, limit %d", round, size, h.c.cfg.MaxBatchBytes)
				}
				if m.toData != withData {
					t.Fatalf("round %d: toData %v", round, m.toData)
				}
				m.finish(0)
				if m.multi() {
					mixed++
					if _, err := envelope.Decode(m.Frames, envelope.Limits{}); err != nil {
						t.Fatalf("round %d: MULTI does not decode: %v", round, err)
					}
				}
				m.eachRun(func(r *outRun) {
					name := r.topic.name
					if r.seq != taken[name]+1 {
						t.Fatalf("round %d: run of %s starts at %d after %d", round, name, r.seq, taken[name])
					}
					taken[name] = r.seq + uint64(r.count) - 1
					fr := [][]byte{[]byte(name), r.header, r.payload}
					if _, err := envelope.Decode(fr, envelope.Limits{}); err != nil {
						t.Fatalf("round %d: run as DATA does not decode: %v", round, err)
					}
					for range r.count {
						order = append(order, name)
					}
				})
			}
		}
		for i := 0; i < 2000; i++ {
			if r.IntN(20) == 0 {
				check(h.c.take(nil))
				continue
			}
			topic := topics[r.IntN(len(topics))]
			if _, err := h.c.publish(topic, make([]byte, r.IntN(64))); err != nil {
				t.Fatal(err)
			}
			accepted = append(accepted, topic)
		}
		check(h.c.take(nil))
		if !slices.Equal(order, accepted) {
			t.Fatalf("round %d: batches out of accept order", round)
		}
		if len(topics) > 1 && h.c.cfg.MaxBatchRecords > 1 && mixed == 0 {
			t.Fatalf("round %d: no batch mixed %d topics", round, len(topics))
		}
		h.c.shutdown()
		table, _ := h.c.end(h.now)
		for _, e := range table {
			if e.Seq != taken[e.Topic] {
				t.Fatalf("round %d: END says %s=%d, taken %d", round, e.Topic, e.Seq, taken[e.Topic])
			}
		}
	}
}

// TestCoreNoMultiWithoutTakers: with no connection on the MULTI form, a
// batch holds one topic, as in protocol 1.0.
func TestCoreNoMultiWithoutTakers(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0 })
	_, nonce := h.connectPrefixes("")
	h.joinForms("plain", nonce)
	for i := 0; i < 100; i++ {
		h.publish([]string{"a", "b"}[i%2])
	}
	for _, m := range h.c.take(nil) {
		if m.multi() || m.b.Count() != 1 {
			t.Fatalf("a batch of %d topics and %d records", m.b.Topics(), m.b.Count())
		}
	}
}
