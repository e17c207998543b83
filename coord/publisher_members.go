package coord

import (
	"time"

	"github.com/syncmq/syncmq/envelope"
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
	p.lg.Info("publisher in gossip cluster", zap.String("node", gc.Node.NodeName), zap.String("gossip", c.addr()),
		zap.Stringer("quorum", p.cfg.Quorum), zap.Duration("settle", p.cfg.Settle))
	return nil
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
	var live, need int
	var evs []coreEvent
	p.mu.Lock()
	if p.cfg.Quorum.membership() {
		p.core.setMembers(ids, time.Now())
		evs = p.core.takeEvents(evs)
		p.noteChangeLocked()
	}
	live, need = p.core.q.live(), p.core.q.need()
	p.mu.Unlock()
	p.logEvents(evs)
	if ev == nil || ev.Member.Meta.Role != membership.RoleSubscriber {
		return
	}
	fields := []zap.Field{zap.String("node", ev.Member.Name)}
	if p.cfg.Quorum.membership() {
		fields = append(fields, zap.Int("live", live), zap.Int("need", need))
	}
	switch ev.Type {
	case membership.EventFailed:
		p.lg.Warn("subscriber failed", fields...)
	case membership.EventJoin:
		p.lg.Info("subscriber member joined", fields...)
	default:
		p.lg.Info("subscriber "+ev.Type.String(), fields...)
	}
}

// Members returns the live members of the gossip cluster as this
// publisher sees them, itself excluded; nil without Gossip.
func (p *Publisher) Members() []membership.Member { return p.cluster.members() }

// GossipAddr returns the bound gossip address ("host:port"), to give other
// nodes as a seed; "" without Gossip.
func (p *Publisher) GossipAddr() string { return p.cluster.addr() }
