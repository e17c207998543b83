package wire

import (
	"cmp"
	"fmt"
	"slices"

	"go.uber.org/zap"
)

// makeSubscriptionRoom brings the subscriptions of all connections back
// within SubscriptionBudget after pr's latest one took them above it: it
// closes the connections holding the most subscription bytes among those
// PubConfig.Evictable lets go, largest first, or pr itself when there is
// none. A subscriber that joined keeps its subscriptions, and one that
// is about to join (a few short prefixes) is never the largest beside a
// connection that floods. It reports whether pr is still open.
//
// It runs on pr's reader without the Pub's locks (Evictable may take
// the application's), and only at the budget.
func (p *Pub) makeSubscriptionRoom(pr *peer) bool {
	budget := int64(p.cfg.SubscriptionBudget)
	peers := *p.snap.Load()
	cands := make([]*peer, 0, len(peers))
	for _, c := range peers {
		if c.subBytes.Load() > 0 {
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, func(a, b *peer) int { return cmp.Compare(b.subBytes.Load(), a.subBytes.Load()) })
	for _, c := range cands {
		if p.subBytes.Load() <= budget {
			return true
		}
		if p.cfg.Evictable == nil || !p.cfg.Evictable(c.id) {
			continue
		}
		p.evictForSubscriptions(c, pr)
	}
	if p.subBytes.Load() <= budget {
		return true
	}
	p.evictForSubscriptions(pr, pr)
	return false
}

// evictForSubscriptions closes victim to make room under
// SubscriptionBudget for a subscription of by.
func (p *Pub) evictForSubscriptions(victim, by *peer) {
	held := victim.subBytes.Load()
	err := fmt.Errorf("%w: the subscriptions of all connections take more than SubscriptionBudget (%d bytes); this one held %d",
		ErrTooManySubscriptions, p.cfg.SubscriptionBudget, held)
	if victim.kill(err) {
		p.subEvicted.Add(1)
		p.rl.Warn("subscription-budget", "subscriber connection closed to keep subscriptions within their budget",
			zap.String("remote", victim.remote), zap.String("for", by.remote), zap.Int64("held_bytes", held),
			zap.Int("subscription_budget", p.cfg.SubscriptionBudget))
	}
}
