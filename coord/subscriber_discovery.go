package coord

import (
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"

	"github.com/syncmq/syncmq/membership"
	"go.uber.org/zap"
)

// joinCluster advertises the subscriber's subscriptions and starts
// following publisher members.
func (s *Subscriber) joinCluster() error {
	gc := *s.cfg.Gossip
	if gc.Node.NodeName == "" {
		gc.Node.NodeName = s.cfg.ID
	}
	meta := membership.Meta{
		Role:    membership.RoleSubscriber,
		NodeID:  s.cfg.ID, // the id the handshake presents, so publishers can match the two
		Topics:  s.cfg.Subscribe,
		Version: handshake.Version,
	}
	s.discovered = make(map[string]struct{})
	c, err := startCluster(gc, meta, s.lg.Named("gossip"), s.reconcilePublishers)
	if err != nil {
		return err
	}
	s.cluster = c
	s.lg.Info("subscriber in gossip cluster", zap.String("node", gc.Node.NodeName), zap.String("gossip", c.addr()))
	return nil
}

// reconcilePublishers connects to every live publisher member whose
// topics overlap this subscriber's and disconnects from discovered ones
// that left, failed or announced their leave. It works from the member
// list, not the event alone, because events can be dropped under load.
// Called from the cluster's event goroutine only.
func (s *Subscriber) reconcilePublishers(members []membership.Member, ev *membership.Event) {
	want := make(map[string]Endpoints)
	for _, m := range members {
		mm := m.Meta
		if mm.Role != membership.RolePublisher || mm.Leaving || mm.PubEndpoint == "" || mm.SyncEndpoint == "" {
			continue
		}
		if !envelope.PrefixesOverlap(mm.Topics, s.cfg.Subscribe) {
			continue
		}
		want[mm.PubEndpoint] = Endpoints{Pub: mm.PubEndpoint, Sync: mm.SyncEndpoint, Recovery: mm.RecoveryEndpoint}
	}
	for ep, eps := range want {
		if _, ok := s.discovered[ep]; ok {
			continue
		}
		if err := s.AddPublisher(eps); err != nil {
			s.lg.Warn("cannot connect to discovered publisher", zap.String("pub", ep), zap.Error(err))
			continue
		}
		s.discovered[ep] = struct{}{}
		s.lg.Info("discovered publisher", zap.String("pub", ep), zap.String("sync", eps.Sync), zap.String("recovery", eps.Recovery))
	}
	for ep := range s.discovered {
		if _, ok := want[ep]; ok {
			continue
		}
		delete(s.discovered, ep)
		s.RemovePublisher(ep)
		reason := "gone"
		if ev != nil && ev.Member.Meta.PubEndpoint == ep {
			reason = ev.Type.String()
		}
		s.lg.Info("publisher left the cluster", zap.String("pub", ep), zap.String("reason", reason))
	}
}

// Members returns the live members of the gossip cluster as this
// subscriber sees them, itself excluded; nil without Gossip.
func (s *Subscriber) Members() []membership.Member { return s.cluster.members() }

// GossipAddr returns the bound gossip address; "" without Gossip.
func (s *Subscriber) GossipAddr() string { return s.cluster.addr() }
