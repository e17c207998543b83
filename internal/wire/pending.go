package wire

import (
	"net"
)

// pendingConn is a connection of a Pub that is still in its handshake
// (TLS, then ZMTP).
type pendingConn struct {
	nc net.Conn
	ip source
	id ConnID // accept order: a lower id is older
	// evicted is set, under the Pub's lock, when the connection was
	// closed to make room for a newer one: its handshake goroutine then
	// neither counts a failure nor releases what the eviction released.
	evicted bool
}

// pendingTable holds the handshakes in progress, oldest first per source
// address. Its bounds are kept by eviction, never by refusal: a new
// connection always gets a place, and the one that gives it up is the
// oldest handshake of the new connection's address once that address
// holds maxPerIP, or else, once the table holds max, the oldest of the
// address holding the most. So an address that floods the port with
// half-open connections only ever evicts its own, and cannot keep a
// handshake from another address out, however fast it renews them.
//
// Not safe for concurrent use: the Pub guards it with its lock. Every
// operation is O(maxPerIP), except an eviction at max, which scans the
// addresses present (at most max).
type pendingTable struct {
	max, maxPerIP int
	n             int
	byIP          map[source][]*pendingConn
}

func newPendingTable(max, maxPerIP int) *pendingTable {
	return &pendingTable{max: max, maxPerIP: min(maxPerIP, max), byIP: make(map[source][]*pendingConn)}
}

// add registers pc, and returns the handshake to evict to keep the
// bounds, already taken out of the table, or nil. The victim is never pc.
func (t *pendingTable) add(pc *pendingConn) (victim *pendingConn) {
	switch {
	case len(t.byIP[pc.ip]) >= t.maxPerIP:
		victim = t.byIP[pc.ip][0]
	case t.n >= t.max:
		victim = t.heaviestOldest()
	}
	if victim != nil {
		t.remove(victim)
		victim.evicted = true
	}
	t.byIP[pc.ip] = append(t.byIP[pc.ip], pc)
	t.n++
	return victim
}

// heaviestOldest returns the oldest handshake of the address holding the
// most; among addresses holding as many, the one whose oldest is oldest.
func (t *pendingTable) heaviestOldest() *pendingConn {
	var best []*pendingConn
	for _, q := range t.byIP {
		if len(q) > len(best) || (len(q) == len(best) && q[0].id < best[0].id) {
			best = q
		}
	}
	if len(best) == 0 {
		return nil
	}
	return best[0]
}

// remove takes pc out of the table and reports whether it was there
// (false: it was evicted, or removed before).
func (t *pendingTable) remove(pc *pendingConn) bool {
	q := t.byIP[pc.ip]
	for i, x := range q {
		if x != pc {
			continue
		}
		if len(q) == 1 {
			delete(t.byIP, pc.ip)
		} else {
			copy(q[i:], q[i+1:])
			q[len(q)-1] = nil
			t.byIP[pc.ip] = q[:len(q)-1]
		}
		t.n--
		return true
	}
	return false
}

// len returns the handshakes in progress.
func (t *pendingTable) len() int { return t.n }

// each calls fn for every handshake in progress.
func (t *pendingTable) each(fn func(*pendingConn)) {
	for _, q := range t.byIP {
		for _, pc := range q {
			fn(pc)
		}
	}
}
