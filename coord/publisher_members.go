package coord

import (
	"context"
	"time"

	"github.com/syncmq/syncmq/proto/envelope"
	"github.com/syncmq/syncmq/proto/handshake"

	"github.com/syncmq/syncmq/membership"
	"go.uber.org/zap"
)

// joinCluster advertises the publisher's endpoints and topics and, under a
// membership quorum, starts counting live subscriber members.
func (p *Publisher) joinCluster() error {
	gc := *p.cfg.Gossip
	if gc.Node.NodeName == "" {
		gc.Node.NodeName = "pub-" + p.cfg.ID.Short()
	}
	host, err := advertiseHost(&gc)
	if err != nil {
		return err
	}
	meta := membership.Meta{
		Role:         membership.RolePublisher,
		NodeID:       gc.Node.NodeName,
		PubEndpoint:  advertiseEndpoint(p.Endpoint(), host),
		SyncEndpoint: advertiseEndpoint(p.SyncEndpoint(), host),
		Topics:       p.cfg.Topics,
		Version:      handshake.Version,
	}
	if p.rec != nil {
		meta.RecoveryEndpoint = advertiseEndpoint(p.RecoveryEndpoint(), host)
	}
	c, err := startCluster(gc, meta, p.lg.Named("gossip"), p.reconcileMembers)
	if err != nil {
		return err
	}
	p.cluster = c
	if p.cfg.Quorum.membership() {
		p.g.Go(p.settle) // in p.g, so Close and Abort wait for it
	}
	p.lg.Info("publisher in gossip cluster", zap.String("node", gc.Node.NodeName), zap.String("gossip", c.addr()),
		zap.Stringer("quorum", p.cfg.Quorum), zap.Duration("settle", p.cfg.Settle))
	return nil
}

// settle lets the membership quorum be judged once Settle has passed, so a
// starting cluster has had time to gossip its members.
func (p *Publisher) settle() {
	t := time.NewTimer(p.cfg.Settle)
	defer t.Stop()
	select {
	case <-t.C:
		p.quorum.settle(time.Now())
	case <-p.stop:
	}
}

// reconcileMembers recomputes the live subscriber members whose topics
// overlap this publisher's, from the member list rather than from the
// event alone: memberlist events can be dropped under load. Called from the
// cluster's event goroutine only.
func (p *Publisher) reconcileMembers(members []membership.Member, ev *membership.Event) {
	ids := make(map[string]struct{})
	for _, m := range members {
		if m.Meta.Role == membership.RoleSubscriber && !m.Meta.Leaving && envelope.PrefixesOverlap(p.cfg.Topics, m.Meta.Topics) {
			ids[m.Meta.NodeID] = struct{}{}
		}
	}
	if !p.cfg.Quorum.membership() {
		if ev != nil && ev.Member.Meta.Role == membership.RoleSubscriber {
			p.lg.Info("subscriber member "+ev.Type.String(), zap.String("node", ev.Member.Name))
		}
		return
	}
	p.quorum.setMembers(ids, time.Now())
	if ev != nil && ev.Member.Meta.Role == membership.RoleSubscriber {
		_, live, need := p.quorum.counts()
		fields := []zap.Field{zap.String("node", ev.Member.Name), zap.Int("live", live), zap.Int("need", need)}
		switch ev.Type {
		case membership.EventFailed:
			p.lg.Warn("subscriber failed", fields...)
		case membership.EventLeave, membership.EventInvalid:
			p.lg.Info("subscriber "+ev.Type.String(), fields...)
		case membership.EventJoin:
			p.lg.Info("subscriber member joined", fields...)
		}
	}
	p.noteQuorum()
}

// noteQuorum logs when a quorum reached before is lost or regained.
func (p *Publisher) noteQuorum() {
	if !p.cfg.Quorum.membership() {
		return
	}
	p.lostMu.Lock()
	defer p.lostMu.Unlock()
	lost := p.quorum.lost.Load()
	if lost == p.wasLost {
		return
	}
	p.wasLost = lost
	_, live, need := p.quorum.counts()
	published := zap.Uint64("published", p.published.Load())
	if lost {
		p.lg.Warn("quorum lost", zap.Int("live", live), zap.Int("need", need), zap.Stringer("policy", p.cfg.QuorumLost), published)
	} else {
		p.lg.Info("quorum regained", zap.Int("live", live), zap.Int("need", need), published)
	}
}

// Members returns the live members of the gossip cluster as this
// publisher sees them, itself excluded; nil without Gossip.
func (p *Publisher) Members() []membership.Member { return p.cluster.members() }

// GossipAddr returns the bound gossip address ("host:port"), to give other
// nodes as a seed; "" without Gossip.
func (p *Publisher) GossipAddr() string { return p.cluster.addr() }

// leaveCluster announces the publisher's departure, so subscribers drop it
// at once rather than after the suspicion timeout. It comes last in Close:
// subscribers repairing a lost tail still need the recovery endpoint.
func (p *Publisher) leaveCluster(ctx context.Context) {
	if p.cluster != nil {
		if err := p.cluster.close(ctx); err != nil {
			p.lg.Debug("gossip leave", zap.Error(err))
		}
	}
}

// Quorum returns the quorum rule in force (QuorumStatic with Expect when
// no membership rule was configured).
func (p *Publisher) Quorum() QuorumRule { return p.cfg.Quorum }
