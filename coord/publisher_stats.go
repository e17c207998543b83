package coord

import (
	"time"

	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/recovery"
)

// PublisherStats is a snapshot of a Publisher's counters.
type PublisherStats struct {
	Published uint64 // records handed to the socket
	Batches   uint64 // DATA and MULTI messages those records travelled in
	Control   uint64 // HELLO, HEARTBEAT, ABORT and END messages
	Joined    int    // distinct subscribers counted by the quorum
	Topics    int    // topics published on
	// Kicked counts data connections closed for not completing the sync
	// handshake within JoinTimeout.
	Kicked uint64
	// Refused counts READY and BYE requests refused, by error code.
	Refused  map[string]uint64
	Recovery RecoveryStats
	Retained recovery.HistoryStats
	Quorum   bool      // publishing has started
	QuorumAt time.Time // when it started
	// Live is how many subscribers count toward the quorum now, Need how
	// many it requires; under a static quorum Live equals Joined.
	Live, Need int
	// QuorumLost is set when a membership quorum reached before is lost.
	QuorumLost bool
	Wire       wire.PubStats

	// Multi counts the Batches that held records of several topics and
	// went as one MULTI to the connections on that form (MultiConns now)
	// and, when there were others, as DATA messages to them.
	Multi      uint64
	MultiConns int
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (p *Publisher) Stats() PublisherStats {
	st := PublisherStats{
		Published: p.published.Load(),
		Batches:   p.batches.Load(),
		Control:   p.controls.Load(),
		Kicked:    p.kicked.Load(),
		Wire:      p.pub.Stats(),
		Multi:     p.multiBatches.Load(),
	}
	p.mu.Lock()
	c := p.core
	st.Joined, st.Topics = len(c.q.counted), len(c.topics)
	st.MultiConns = c.multiConns
	st.Live, st.Need, st.QuorumLost = c.q.live(), c.q.need(), c.q.lost()
	st.Quorum, st.QuorumAt = c.q.reached(), c.q.reachedAt
	st.Refused = make(map[string]uint64, len(c.refused))
	for code, n := range c.refused {
		st.Refused[code] = n
	}
	p.mu.Unlock()
	if p.rec != nil {
		st.Recovery, st.Retained = p.rec.stats(), p.rec.history.Stats()
	}
	return st
}
