package coord

import (
	"fmt"
	"strconv"
	"time"
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

// quorum decides whether the subscribers that count satisfy the rule. It
// is plain state owned by the publisher core: no locks, clocks or
// channels; every input takes the time it happened.
//
// Static rule: a subscriber counts once it completed the handshake.
// Before publishing starts it stops counting when the data connection
// that proved its path goes away (drop), so a quorum is never reached on
// subscribers that already left. After the start it counts for good.
//
// Membership rules: a subscriber counts while it is a live member of the
// cluster and has completed the handshake, and only once the member list
// has settled (a starting cluster has had time to gossip).
type quorum struct {
	rule    QuorumRule
	counted map[string]struct{} // ids that completed the handshake and count
	members map[string]struct{} // live matching subscriber members (membership rules)
	settled bool                // the member list is trusted

	reachedAt time.Time // zero until publishing starts
	have      bool      // the rule is satisfied now
	// proven is set once the rule was satisfied for real. A start forced
	// by policy proceed cannot be lost before that: the subscribers
	// present were accepted as enough.
	proven bool
}

func newQuorum(rule QuorumRule) quorum {
	return quorum{
		rule:    rule,
		counted: make(map[string]struct{}),
		members: make(map[string]struct{}),
		settled: !rule.membership(),
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
		return len(q.counted)
	}
	n := 0
	for id := range q.members {
		if _, ok := q.counted[id]; ok {
			n++
		}
	}
	return n
}

// reached reports whether publishing has started.
func (q *quorum) reached() bool { return !q.reachedAt.IsZero() }

// lost reports whether a membership quorum satisfied before is not
// satisfied now. A static quorum, once reached, cannot be lost.
func (q *quorum) lost() bool { return q.rule.membership() && q.proven && !q.have }

// quorumChange is what an input did to the quorum.
type quorumChange uint8

const (
	quorumSame     quorumChange = iota
	quorumReached               // satisfied for the first time: publishing starts
	quorumLost                  // satisfied before, not now
	quorumRegained              // lost, then satisfied again
)

// update re-evaluates the rule after an input at now.
func (q *quorum) update(now time.Time) quorumChange {
	sat := q.settled && q.live() >= q.need()
	wasLost := q.lost()
	q.have = sat
	q.proven = q.proven || sat
	switch {
	case sat && !q.reached():
		q.reachedAt = now
		return quorumReached
	case wasLost && !q.lost():
		return quorumRegained
	case !wasLost && q.lost():
		return quorumLost
	}
	return quorumSame
}

// join counts id. It reports whether id was not counted before.
func (q *quorum) join(id string, now time.Time) (first bool, ch quorumChange) {
	_, known := q.counted[id]
	q.counted[id] = struct{}{}
	return !known, q.update(now)
}

// drop stops counting id (its data connection went away before the start).
func (q *quorum) drop(id string, now time.Time) quorumChange {
	delete(q.counted, id)
	return q.update(now)
}

// setMembers replaces the live matching subscriber members. It returns
// the ids that stopped being members.
func (q *quorum) setMembers(ids map[string]struct{}, now time.Time) (gone []string, ch quorumChange) {
	for id := range q.members {
		if _, ok := ids[id]; !ok {
			gone = append(gone, id)
		}
	}
	q.members = ids
	return gone, q.update(now)
}

// settle marks the member list as trusted.
func (q *quorum) settle(now time.Time) quorumChange {
	q.settled = true
	return q.update(now)
}

// force starts publishing without the rule (Expect 0, or policy proceed).
func (q *quorum) force(now time.Time) {
	if !q.reached() {
		q.reachedAt = now
	}
}
