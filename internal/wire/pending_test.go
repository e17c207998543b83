package wire

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestPendingTableEvictsOwnAddressFirst: the table's bounds are kept by
// eviction: the oldest handshake of the new connection's address once
// that address holds maxPerIP, else, at max, the oldest of the address
// holding the most (the older head on a tie). A newcomer is never the
// victim, and an address with few handshakes never loses one to an
// address with many.
func TestPendingTableEvictsOwnAddressFirst(t *testing.T) {
	a, b, c := source{ip: netip.MustParseAddr("10.0.0.1")}, source{ip: netip.MustParseAddr("10.0.0.2")}, source{ip: netip.MustParseAddr("10.0.0.3")}
	tab := newPendingTable(6, 3)
	var id ConnID
	add := func(ip source) (*pendingConn, *pendingConn) {
		id++
		pc := &pendingConn{ip: ip, id: id}
		return pc, tab.add(pc)
	}
	a1, v := add(a)
	if v != nil {
		t.Fatal("evicted from an empty table")
	}
	a2, _ := add(a)
	a3, _ := add(a)
	// a holds maxPerIP: its fourth evicts its first.
	if _, v := add(a); v != a1 || !a1.evicted {
		t.Fatalf("victim %+v, want a's oldest", v)
	}
	b1, _ := add(b)
	add(b)
	if tab.len() != 5 {
		t.Fatalf("%d pending, want 5", tab.len())
	}
	c1, v := add(c)
	_ = c1
	if v != nil || tab.len() != 6 {
		t.Fatalf("victim %+v at %d pending, want none at 6", v, tab.len())
	}
	// Full: a newcomer from c evicts from a, which holds the most.
	if _, v := add(c); v != a2 {
		t.Fatalf("victim %+v, want a's oldest", v)
	}
	// a, b and c hold 2 each now: the oldest head is a's (a3), older than b1.
	if _, v := add(c); v != a3 {
		t.Fatalf("victim %+v, want a's oldest (the older head on a tie)", v)
	}
	// c holds maxPerIP: its next evicts its own oldest, not b's.
	if _, v := add(c); v != c1 {
		t.Fatalf("victim %+v, want c's oldest", v)
	}
	if tab.remove(a1) || tab.remove(a2) {
		t.Error("remove found an evicted handshake")
	}
	if !tab.remove(b1) || tab.remove(b1) {
		t.Error("remove of a live handshake: want true once")
	}
	n := 0
	tab.each(func(*pendingConn) { n++ })
	if n != tab.len() || n != 5 {
		t.Errorf("each saw %d, len %d, want 5", n, tab.len())
	}
}

// TestPubHalfOpenFloodEvictsOwnHandshakes: 40 connections from one
// address that never say a word, with MaxPendingPerIP 8 and a
// HandshakeTimeout of an hour, hold 8 handshakes: each newer one closed
// the oldest of its address, counted and logged once. A subscriber from
// another address still connects and subscribes.
func TestPubHalfOpenFloodEvictsOwnHandshakes(t *testing.T) {
	const flood, perIP = 40, 8
	lg, logs := warnLog()
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{MaxPendingPerIP: perIP, HandshakeTimeout: time.Hour, Logger: lg, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var silent []net.Conn
	for i := 0; i < flood; i++ {
		silent = append(silent, dialFrom(t, "127.0.0.2", p.Addr().String()))
		// Each must be accepted before the next, so the order is known.
		waitFor(t, 5*time.Second, "the connection accepted", func() bool {
			st := p.Stats()
			return st.Pending+int(st.EvictedPending) == i+1
		})
	}
	if st := p.Stats(); st.Pending != perIP || st.EvictedPending != flood-perIP || st.Refused != 0 || st.HandshakeFailed != 0 {
		t.Fatalf("stats %+v: want %d pending, %d evicted, nothing refused or failed", st, perIP, flood-perIP)
	}
	for i, s := range silent {
		if open := heldOpen(s, 50*time.Millisecond); open != (i >= flood-perIP) {
			t.Errorf("connection %d open=%v: want only the newest %d open", i, open, perIP)
		}
	}
	dialRawSubFrom(t, "127.0.0.3", p.Addr().String(), "t")
	waitFor(t, 5*time.Second, "the subscriber", func() bool { return len(events.of(PeerSubscribed)) == 1 })
	lines := linesWith(logs, "handshake in progress closed")
	if len(lines) != 1 || !strings.HasPrefix(lines[0].ContextMap()["remote"].(string), "127.0.0.2:") {
		t.Errorf("log lines %+v: want one, with the evicted connection's address", lines)
	}
}

// TestPubPendingBoundEvictsHeaviestAddress: with MaxPending 8 filled by
// two addresses (6 and 2 half-open connections), a connection from a
// third address closes the oldest handshake of the first, never one of
// the second's.
func TestPubPendingBoundEvictsHeaviestAddress(t *testing.T) {
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{MaxPending: 8, MaxPendingPerIP: 6, HandshakeTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var heavy, light []net.Conn
	dial := func(src string) net.Conn {
		want := p.Stats().Pending + int(p.Stats().EvictedPending) + 1
		nc := dialFrom(t, src, p.Addr().String())
		waitFor(t, 5*time.Second, "the connection accepted", func() bool {
			st := p.Stats()
			return st.Pending+int(st.EvictedPending) == want
		})
		return nc
	}
	for i := 0; i < 6; i++ {
		heavy = append(heavy, dial("127.0.0.2"))
	}
	for i := 0; i < 2; i++ {
		light = append(light, dial("127.0.0.3"))
	}
	dialRawSubFrom(t, "127.0.0.4", p.Addr().String(), "t")
	waitFor(t, 5*time.Second, "the subscriber", func() bool { return p.Stats().Peers == 1 })
	if st := p.Stats(); st.EvictedPending != 1 || st.Pending != 7 {
		t.Fatalf("stats %+v: want one eviction, 7 pending", st)
	}
	if heldOpen(heavy[0], 50*time.Millisecond) {
		t.Error("the heavy address's oldest handshake is still open")
	}
	for i, nc := range append(heavy[1:], light...) {
		if !heldOpen(nc, 20*time.Millisecond) {
			t.Errorf("handshake %d was closed", i)
		}
	}
}

// heldOpen reports whether the server still holds nc after reading
// whatever it sent (a greeting) for d: a timeout means open, EOF or a
// reset closed.
func heldOpen(nc net.Conn, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	return err != nil && isTimeout(err)
}
