package coord

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/proto/envelope"
)

// QuorumKind selects how many subscribers a Publisher waits for.
type QuorumKind int

const (
	// QuorumStatic waits for N distinct subscribers to complete the
	// handshake (PublisherConfig.Expect). It needs no membership, and a
	// subscriber counts from its handshake on, whatever happens to it.
	QuorumStatic QuorumKind = iota
	// QuorumAll waits until every live subscriber member whose topics
	// match has completed the handshake, and at least one has.
	QuorumAll
	// QuorumMajority waits for more than half of the live matching
	// subscriber members.
	QuorumMajority
	// QuorumCount waits for N live matching subscriber members.
	QuorumCount
)

// QuorumRule is the quorum a Publisher waits for. The membership kinds
// (all, majority, N) count only subscribers that are live members of the
// gossip cluster and completed the handshake; a subscriber that fails or
// leaves stops counting at once. Under all and majority a failure also
// shrinks the number needed, so only QuorumCount can lose its quorum to a
// failure; all and majority lose it when a new member joins and has not
// handshaked yet.
type QuorumRule struct {
	Kind QuorumKind
	// N is the count for QuorumStatic and QuorumCount.
	N int
}

// ParseQuorumRule parses "all", "majority" or a count N (QuorumCount).
func ParseQuorumRule(s string) (QuorumRule, error) {
	switch s {
	case "all":
		return QuorumRule{Kind: QuorumAll}, nil
	case "majority":
		return QuorumRule{Kind: QuorumMajority}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return QuorumRule{}, fmt.Errorf("coord: quorum %q: want all, majority or a count of at least 1", s)
	}
	return QuorumRule{Kind: QuorumCount, N: n}, nil
}

// String returns "all", "majority", the count, or "expect=N" for QuorumStatic.
func (r QuorumRule) String() string {
	switch r.Kind {
	case QuorumAll:
		return "all"
	case QuorumMajority:
		return "majority"
	case QuorumCount:
		return strconv.Itoa(r.N)
	}
	return "expect=" + strconv.Itoa(r.N)
}

// membership reports whether the rule counts live members.
func (r QuorumRule) membership() bool { return r.Kind != QuorumStatic }

// quorum counts distinct subscribers that completed the handshake and,
// under a membership rule, are live members. It has no sockets or clocks
// of its own, so it is tested directly.
type quorum struct {
	mu       sync.Mutex
	rule     QuorumRule
	joined   map[string]time.Time
	members  map[string]struct{} // live matching subscriber members by NodeID (membership rules)
	settled  bool                // the member list is trusted (membership rules)
	byes     map[string]struct{}
	reachedT time.Time
	failure  error
	reached  chan struct{} // closed at quorum or at a forced start
	have     bool          // the rule is satisfied now
	changed  chan struct{} // closed and replaced whenever have changes
	lost     atomic.Bool   // publishing started and have is false
}

func newQuorum(rule QuorumRule) *quorum {
	return &quorum{
		rule:    rule,
		joined:  make(map[string]time.Time),
		members: make(map[string]struct{}),
		settled: !rule.membership(),
		byes:    make(map[string]struct{}),
		reached: make(chan struct{}),
		changed: make(chan struct{}),
	}
}

// need is how many counted subscribers the rule requires now.
func (q *quorum) need() int {
	switch q.rule.Kind {
	case QuorumAll:
		return max(1, len(q.members))
	case QuorumMajority:
		return len(q.members)/2 + 1
	}
	return q.rule.N
}

// live is how many subscribers count now.
func (q *quorum) live() int {
	if !q.rule.membership() {
		return len(q.joined)
	}
	n := 0
	for id := range q.members {
		if _, ok := q.joined[id]; ok {
			n++
		}
	}
	return n
}

// update re-evaluates the rule after a change; q.mu is held.
func (q *quorum) update(now time.Time) {
	sat := q.settled && q.live() >= q.need()
	if sat && q.reachedT.IsZero() && q.failure == nil {
		q.reachedT = now
		close(q.reached)
	}
	if sat != q.have {
		q.have = sat
		close(q.changed)
		q.changed = make(chan struct{})
	}
	q.lost.Store(!q.reachedT.IsZero() && !sat)
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
	q.update(now)
	return len(q.joined), first, !q.reachedT.IsZero()
}

// setMembers replaces the live matching subscriber members (membership
// rules). It returns the ids that stopped being members.
func (q *quorum) setMembers(ids map[string]struct{}, now time.Time) (gone []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id := range q.members {
		if _, ok := ids[id]; !ok {
			gone = append(gone, id)
		}
	}
	q.members = ids
	q.update(now)
	return gone
}

// settle marks the member list as trusted: a starting cluster has had time
// to gossip its members.
func (q *quorum) settle(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.settled = true
	q.update(now)
}

// force starts publishing without quorum (Expect 0 or policy proceed).
func (q *quorum) force(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reachedT.IsZero() && q.failure == nil {
		q.reachedT = now
		close(q.reached)
	}
	q.update(now)
}

// fail records a quorum timeout under policy fail.
func (q *quorum) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reachedT.IsZero() && q.failure == nil {
		q.failure = err
	}
}

// waitHave blocks until the rule is satisfied, ctx ends or stop closes.
func (q *quorum) waitHave(ctx context.Context, stop <-chan struct{}) error {
	for {
		q.mu.Lock()
		have, ch := q.have, q.changed
		q.mu.Unlock()
		if have {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return ErrClosed
		}
	}
}

func (q *quorum) err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failure
}

// counts returns the distinct subscribers that ever joined, those that
// count now, and how many the rule needs now.
func (q *quorum) counts() (joined, live, need int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.joined), q.live(), q.need()
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
