package coord

import (
	"context"
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
			if _, reached := q.at(); reached {
				t.Fatal("quorum judged before settle")
			}
			q.settle(now)
			if _, reached := q.at(); reached != tt.reachedAB {
				t.Fatalf("a,b of a,b,c joined: reached %v, want %v", reached, tt.reachedAB)
			}
			if !tt.reachedAB {
				q.join("c", now)
				if _, reached := q.at(); !reached {
					t.Fatal("all joined, quorum not reached")
				}
			}
			gone := q.setMembers(ids("a", "c"), now)
			if len(gone) != 1 || gone[0] != "b" {
				t.Fatalf("gone %v, want [b]", gone)
			}
			lost := q.lost.Load()
			if lost != tt.lostAfterBFails {
				t.Fatalf("after b failed: lost %v, want %v", lost, tt.lostAfterBFails)
			}
			if lost {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
				if err := q.waitHave(ctx, nil); err != context.DeadlineExceeded {
					t.Fatalf("waitHave while lost = %v", err)
				}
				cancel()
				q.setMembers(ids("a", "c", "d"), now)
				q.join("d", now)
				q.join("c", now)
				if q.lost.Load() {
					_, live, need := q.counts()
					t.Fatalf("replacements joined, still lost: live %d need %d", live, need)
				}
				if err := q.waitHave(context.Background(), nil); err != nil {
					t.Fatal(err)
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
	if _, reached := q.at(); reached {
		t.Fatal("a non-member counted")
	}
	q.setMembers(ids("stranger"), now)
	if _, reached := q.at(); !reached {
		t.Fatal("member that joined earlier not counted once it is a member")
	}
}

func TestQuorumCountsDistinctIDs(t *testing.T) {
	q := newQuorum(QuorumRule{N: 2})
	now := testTime()
	if n, first, started := q.join("a", now); n != 1 || !first || started {
		t.Fatalf("first join: %d %v %v", n, first, started)
	}
	if n, first, started := q.join("a", now); n != 1 || first || started {
		t.Fatalf("rejoin counted: %d %v %v", n, first, started)
	}
	if n, _, started := q.join("b", now); n != 2 || !started {
		t.Fatalf("second id: %d %v", n, started)
	}
	select {
	case <-q.reached:
	default:
		t.Fatal("reached not closed at quorum")
	}
}

func testTime() time.Time { return time.Unix(1_700_000_000, 0) }
