package coord

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"
)

// connectFrom is connect for a data connection from source address addr.
func (h *coreHarness) connectFrom(addr string) (connID, string) {
	h.t.Helper()
	h.next++
	h.c.dataConnected(h.next, "", addr, h.now)
	nonce, ok := h.c.dataSubscribed(h.next, []byte(envelope.ControlTopic), h.now)
	if !ok {
		h.t.Fatal("no HELLO once the control topic was subscribed")
	}
	return h.next, hex.EncodeToString(nonce[:])
}

// TestCoreSquattersFreeTheirPlace: ids that join and hang up before the
// start fill MaxSubscribers no longer: each is forgotten when its data
// connection goes, so a real subscriber joins, and so does a squatter
// that comes back under its old id (as new: nothing was published it
// could resume). After the start an id that leaves keeps its place and
// its first table, and a rejoin is told where it first joined.
func TestCoreSquattersFreeTheirPlace(t *testing.T) {
	const max = 5
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = max; c.MaxSubscribers = max })
	for i := 0; i < max; i++ {
		c, n := h.connect()
		h.join(fmt.Sprintf("squatter-%d", i), n)
		h.c.dataGone(c, h.now)
	}
	if len(h.c.subs) != 0 || h.c.forgotten != max || h.c.q.live() != 0 {
		t.Fatalf("%d ids remembered, %d forgotten, %d live: want every squatter forgotten", len(h.c.subs), h.c.forgotten, h.c.q.live())
	}
	_, n := h.connect()
	if ack := h.join("squatter-0", n); ack.Resume != nil || ack.Joined != 1 {
		t.Fatalf("a squatter back under its id: ACK %+v, want a plain join", ack)
	}
	real := map[string]connID{}
	for i := 0; i < max; i++ {
		if i == max-2 {
			h.c.dataGone(real["real-0"], h.now) // forgotten: room for one more
		}
		c, n := h.connect()
		id := fmt.Sprintf("real-%d", i)
		h.join(id, n)
		real[id] = c
	}
	if h.c.phase != phasePublishing || len(h.c.subs) != max {
		t.Fatalf("phase %v with %d live, %d remembered: want publishing with %d", h.c.phase, h.c.q.live(), len(h.c.subs), max)
	}
	h.publish("a")
	h.c.take(nil)
	// After the start, leaving keeps the place and the first table.
	h.c.dataGone(real["real-4"], h.now)
	if _, ok := h.c.subs["real-4"]; !ok || h.c.forgotten != max+1 {
		t.Fatalf("an id that left after the start was forgotten (forgotten %d)", h.c.forgotten)
	}
	_, n = h.connect()
	h.refused("newcomer", n, handshake.CodeFull)
	if ack := h.join("real-4", n); len(ack.Resume) != 1 || ack.Resume[0].Seq != 0 {
		t.Fatalf("rejoin after the start: ACK %+v, want Resume at 0", ack)
	}
}

// TestCoreMaxSubscribersPerIP: on tcp://, one source address may hold
// MaxSubscribersPerIP ids; a new id beyond is refused "full" and
// counted, a known id from it still rejoins, another address joins, and
// a forgotten id frees its address's place.
func TestCoreMaxSubscribersPerIP(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 10; c.MaxSubscribersPerIP = 2 })
	c1, n := h.connectFrom("10.0.0.1")
	h.join("a", n)
	_, n = h.connectFrom("10.0.0.1")
	h.join("b", n)
	_, n = h.connectFrom("10.0.0.1")
	h.refused("c", n, handshake.CodeFull)
	if h.c.fullAddr != 1 {
		t.Fatalf("%d per-address refusals, want 1", h.c.fullAddr)
	}
	_, n = h.connectFrom("10.0.0.1")
	h.join("b", n) // known: a rejoin takes no new place
	_, n = h.connectFrom("10.0.0.2")
	h.join("c", n)
	h.c.dataGone(c1, h.now) // "a" left before the start: forgotten
	_, n = h.connectFrom("10.0.0.1")
	h.join("d", n)
	if h.c.perAddr["10.0.0.1"] != 2 || h.c.perAddr["10.0.0.2"] != 1 {
		t.Fatalf("per address %v", h.c.perAddr)
	}

	// With TLS the certificate is the id: no per-address bound.
	h = newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 10; c.MaxSubscribersPerIP = 1 })
	h.c.bindIdentity = true
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("tls-%d", i)
		h.next++
		h.c.dataConnected(h.next, id, "10.0.0.1", h.now)
		nonce, _ := h.c.dataSubscribed(h.next, []byte(envelope.ControlTopic), h.now)
		if _, ok := h.readyAs(id, id, hex.EncodeToString(nonce[:])).(handshake.Ack); !ok {
			t.Fatalf("TLS subscriber %d from one address refused", i)
		}
	}
}
