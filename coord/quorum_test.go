package coord

import (
	"testing"
	"time"
)

func ids(names ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}

// TestQuorumMembershipRules drives the quorum state machine through the
// life of a cluster: members gossip in, handshake, fail and come back.
func TestQuorumMembershipRules(t *testing.T) {
	now := testTime()
	tests := []struct {
		rule QuorumRule
		// after settle with members a,b,c and a,b joined:
		reachedAB bool
		// then b fails (members a,c):
		lostAfterBFails bool
	}{
		// all needs c too, which then joins; after b fails a,c of a,c count.
		{QuorumRule{Kind: QuorumAll}, false, false},
		// 2 of 3 is a majority; after b fails only a counts, 1 of 2 is not.
		{QuorumRule{Kind: QuorumMajority}, true, true},
		// 2 counted, then 1.
		{QuorumRule{Kind: QuorumCount, N: 2}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.rule.String(), func(t *testing.T) {
			q := newQuorum(tt.rule)
			q.setMembers(ids("a", "b", "c"), now)
			q.join("a", now)
			q.join("b", now)
			if q.reached() {
				t.Fatal("quorum judged before settle")
			}
			if ch := q.settle(now); q.reached() != tt.reachedAB || (ch == quorumReached) != tt.reachedAB {
				t.Fatalf("a,b of a,b,c joined: reached %v (change %v), want %v", q.reached(), ch, tt.reachedAB)
			}
			if !tt.reachedAB {
				if _, ch := q.join("c", now); ch != quorumReached {
					t.Fatal("all joined, quorum not reached")
				}
			}
			gone, ch := q.setMembers(ids("a", "c"), now)
			if len(gone) != 1 || gone[0] != "b" {
				t.Fatalf("gone %v, want [b]", gone)
			}
			if q.lost() != tt.lostAfterBFails || (ch == quorumLost) != tt.lostAfterBFails {
				t.Fatalf("after b failed: lost %v (change %v), want %v", q.lost(), ch, tt.lostAfterBFails)
			}
			if q.lost() {
				q.setMembers(ids("a", "c", "d"), now)
				if _, ch := q.join("d", now); ch != quorumRegained || q.lost() {
					t.Fatalf("a replacement joined, still lost: live %d need %d", q.live(), q.need())
				}
			}
		})
	}
}

// TestQuorumCountsOnlyMembers: a handshake from a subscriber the cluster
// does not know does not count toward a membership quorum.
func TestQuorumCountsOnlyMembers(t *testing.T) {
	now := testTime()
	q := newQuorum(QuorumRule{Kind: QuorumCount, N: 1})
	q.settle(now)
	q.join("stranger", now)
	if q.reached() {
		t.Fatal("a non-member counted")
	}
	if _, ch := q.setMembers(ids("stranger"), now); ch != quorumReached {
		t.Fatal("member that joined earlier not counted once it is a member")
	}
}

func TestQuorumCountsDistinctIDs(t *testing.T) {
	q := newQuorum(QuorumRule{N: 2})
	now := testTime()
	if first, ch := q.join("a", now); !first || ch != quorumSame {
		t.Fatalf("first join: %v %v", first, ch)
	}
	if first, ch := q.join("a", now); first || ch != quorumSame || q.live() != 1 {
		t.Fatalf("rejoin counted: %v %v %d", first, ch, q.live())
	}
	if _, ch := q.join("b", now); ch != quorumReached || !q.reachedAt.Equal(now) {
		t.Fatalf("second id: %v", ch)
	}
	if q.drop("a", now); q.lost() {
		t.Fatal("a static quorum lost after the start")
	}
}

// TestQuorumForcedIsNotLost: after policy proceed started publishing with
// fewer members, the quorum is not "lost" until it was once met.
func TestQuorumForcedIsNotLost(t *testing.T) {
	now := testTime()
	q := newQuorum(QuorumRule{Kind: QuorumAll})
	q.setMembers(ids("a", "b"), now)
	q.settle(now)
	q.join("a", now)
	q.force(now)
	if _, ch := q.setMembers(ids("a", "b", "c"), now); q.lost() || ch != quorumSame {
		t.Fatal("a forced start counted as lost")
	}
}

func testTime() time.Time { return time.Unix(1_700_000_000, 0) }
