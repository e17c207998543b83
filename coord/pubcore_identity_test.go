package coord

import (
	"encoding/hex"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"
)

// connectAs is connect for a data connection whose client certificate
// names identity.
func (h *coreHarness) connectAs(identity string) (connID, string) {
	h.t.Helper()
	h.next++
	h.c.dataConnected(h.next, identity, "", h.now)
	nonce, ok := h.c.dataSubscribed(h.next, []byte(envelope.ControlTopic), h.now)
	if !ok {
		h.t.Fatal("no HELLO once the control topic was subscribed")
	}
	return h.next, hex.EncodeToString(nonce[:])
}

// readyAs sends a READY for id on a sync connection whose certificate
// names identity and returns the answer.
func (h *coreHarness) readyAs(identity, id, nonce string) any {
	return h.c.ready(h.readyMsg(id, nonce), identity, h.now)
}

func wantForbidden(t *testing.T, what string, r any) {
	t.Helper()
	if e, ok := r.(handshake.ErrorReply); !ok || e.Code != handshake.CodeForbidden {
		t.Fatalf("%s: got %+v, want error %s", what, r, handshake.CodeForbidden)
	}
}

// TestCoreIdentityBinding: with TLS, a READY counts only under the
// identity of the sync connection's certificate and of the data
// connection whose nonce it quotes; nobody joins, counts or says BYE
// under another name, and every refusal is counted with the identity.
func TestCoreIdentityBinding(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 2 })
	h.c.bindIdentity = true
	_, alice := h.connectAs("alice")
	_, bob := h.connectAs("bob")

	wantForbidden(t, "mallory claims alice's id", h.readyAs("mallory", "alice", alice))
	wantForbidden(t, "mallory quotes alice's nonce under her own id", h.readyAs("mallory", "mallory", alice))
	wantForbidden(t, "bob's id on alice's sync connection", h.readyAs("alice", "bob", bob))
	wantForbidden(t, "alice quotes bob's nonce", h.readyAs("alice", "alice", bob))
	if h.c.q.live() != 0 || len(h.c.subs) != 0 {
		t.Fatalf("live %d, %d subscribers remembered after refusals", h.c.q.live(), len(h.c.subs))
	}
	if _, ok := h.readyAs("alice", "alice", alice).(handshake.Ack); !ok {
		t.Fatal("alice's own READY refused")
	}
	if h.c.phase != phaseProbing {
		t.Fatal("quorum of 2 reached with one subscriber")
	}

	bye := h.readyMsg("alice", alice)
	bye.Type = handshake.TypeBye
	wantForbidden(t, "bye for alice from bob", h.c.bye(bye, "bob"))
	if h.c.subs["alice"].bye {
		t.Fatal("bob said bye for alice")
	}
	if _, ok := h.c.bye(bye, "alice").(handshake.Ack); ok {
		t.Fatal("bye answered with an ACK")
	}
	if !h.c.subs["alice"].bye {
		t.Fatal("alice's own bye refused")
	}
	if n := h.c.refused[handshake.CodeForbidden]; n != 5 {
		t.Fatalf("%d forbidden refusals counted, want 5", n)
	}
	var withIdentity int
	for _, ev := range h.c.takeEvents(nil) {
		if ev.kind == evRefused && ev.code == handshake.CodeForbidden && ev.identity != "" {
			withIdentity++
		}
	}
	if withIdentity != 5 {
		t.Fatalf("%d refusal events name the identity, want 5", withIdentity)
	}
}

// TestCoreAllowList: an identity the allow-list does not name cannot
// join or count, even with its own certificate and nonce.
func TestCoreAllowList(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 1 })
	h.c.bindIdentity = true
	h.c.allow = newAllowList([]string{"alice"})
	_, bob := h.connectAs("bob")
	wantForbidden(t, "bob, not allowed", h.readyAs("bob", "bob", bob))
	if h.c.phase != phaseProbing || h.c.q.live() != 0 {
		t.Fatal("a subscriber not on the allow-list counted")
	}
	_, alice := h.connectAs("alice")
	if _, ok := h.readyAs("alice", "alice", alice).(handshake.Ack); !ok {
		t.Fatal("alice refused")
	}
	if h.c.phase != phasePublishing {
		t.Fatal("quorum not reached with alice")
	}
}

// TestCoreNoTLSNoBinding: without TLS there are no identities, and the
// handshake is what it always was.
func TestCoreNoTLSNoBinding(t *testing.T) {
	h := newCoreHarness(t, nil)
	_, n := h.connect()
	if _, ok := h.readyAs("", "anyone", n).(handshake.Ack); !ok {
		t.Fatal("READY without TLS refused")
	}
}
