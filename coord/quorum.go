package coord

import (
	"encoding/hex"
	"sync"
	"time"

	"github.com/syncmq/syncmq/envelope"
)

// quorum counts distinct subscribers that completed the handshake. It has
// no sockets or clocks of its own, so it is tested directly.
type quorum struct {
	mu       sync.Mutex
	expect   int
	joined   map[string]time.Time
	byes     map[string]struct{}
	reachedT time.Time
	failure  error
	reached  chan struct{} // closed at quorum or at a forced start
}

func newQuorum(expect int) *quorum {
	return &quorum{expect: expect, joined: make(map[string]time.Time), byes: make(map[string]struct{}), reached: make(chan struct{})}
}

// bye records that a joined subscriber has everything up to END.
func (q *quorum) bye(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.joined[id]; ok {
		q.byes[id] = struct{}{}
	}
}

// allSaidBye reports whether every joined subscriber said bye.
func (q *quorum) allSaidBye() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.byes) == len(q.joined)
}

// join counts id once and reports the count, whether id is new, and
// whether publishing has started (possibly because of this join).
func (q *quorum) join(id string, now time.Time) (joined int, first, started bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.joined[id]; !ok {
		q.joined[id] = now
		first = true
	}
	if q.reachedT.IsZero() && q.failure == nil && len(q.joined) >= q.expect {
		q.reachedT = now
		close(q.reached)
	}
	return len(q.joined), first, !q.reachedT.IsZero()
}

// force starts publishing without quorum (Expect 0 or policy proceed).
func (q *quorum) force(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reachedT.IsZero() && q.failure == nil {
		q.reachedT = now
		close(q.reached)
	}
}

// fail records a quorum timeout under policy fail.
func (q *quorum) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reachedT.IsZero() && q.failure == nil {
		q.failure = err
	}
}

func (q *quorum) err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failure
}

func (q *quorum) joinedCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.joined)
}

func (q *quorum) at() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.reachedT, !q.reachedT.IsZero()
}

// nonceRing remembers the nonces of the most recent HELLOs, so a READY
// may quote any HELLO from the last few seconds.
type nonceRing struct {
	mu   sync.Mutex
	ring [128][envelope.NonceSize]byte
	next int
	n    int
}

func (r *nonceRing) add(n [envelope.NonceSize]byte) {
	r.mu.Lock()
	r.ring[r.next] = n
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

func (r *nonceRing) has(hexNonce string) bool {
	var n [envelope.NonceSize]byte
	if b, err := hex.DecodeString(hexNonce); err != nil || len(b) != len(n) {
		return false
	} else {
		copy(n[:], b)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < r.n; i++ {
		if r.ring[i] == n {
			return true
		}
	}
	return false
}
