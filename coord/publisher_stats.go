package coord

import (
	"time"

	"github.com/syncmq/syncmq/journal"
	"github.com/syncmq/syncmq/recovery"
)

// PublisherStats is a snapshot of a Publisher's counters.
type PublisherStats struct {
	Published      uint64 // records handed to the socket
	PublishedBytes uint64 // their payload bytes
	Batches        uint64 // DATA and MULTI messages those records travelled in
	Control        uint64 // HELLO, HEARTBEAT, ABORT and END messages
	Joined         int    // distinct subscribers counted by the quorum
	Topics         int    // topics published on
	// Handshakes counts READY requests answered with an ACK (a
	// subscriber that reconnects handshakes again).
	Handshakes uint64
	// Kicked counts data connections closed for not completing the sync
	// handshake within JoinTimeout.
	Kicked uint64
	// Refused counts READY and BYE requests refused, by error code.
	Refused map[string]uint64
	// CoalescedEvents counts connection events of the data endpoint
	// ignored because they told the publisher nothing new: a
	// connection's subscriptions beyond the first of each kind (SUBSCRIBE
	// and CANCEL churn), and connections gone before the publisher
	// handled their arrival.
	CoalescedEvents uint64
	// Forgotten counts subscriber ids forgotten because their data
	// connection went away before the start: each gave its
	// MaxSubscribers place up.
	Forgotten uint64
	// FullPerIP counts the READYs among Refused["full"] refused because
	// their address had MaxSubscribersPerIP ids (tcp:// only).
	FullPerIP uint64
	Recovery  RecoveryStats
	// Retained is the memory History (without DataDir), Journal the
	// journal on disk (with DataDir).
	Retained recovery.HistoryStats
	Journal  journal.Stats
	// KeepFailed counts passes in which the store could not keep batches
	// (the journal's disk was full): they were held back, not sent.
	KeepFailed uint64
	// KeepFailing is set while the latest attempt to keep batches failed:
	// publishing has stalled until the store takes them (every
	// KeepFailed pass is retried).
	KeepFailing bool
	Quorum      bool      // publishing has started
	QuorumAt    time.Time // when it started
	// Publishing is set once the quorum was reached (or forced by policy
	// proceed) until Shutdown or Close starts. Under QuorumLost pause,
	// Publish also waits while QuorumLost is set.
	Publishing bool
	// Live is how many subscribers count toward the quorum now, Need how
	// many it requires; under a static quorum Live equals Joined.
	Live, Need int
	// QuorumLost is set when a membership quorum reached before is lost.
	QuorumLost bool
	// Wire counts the PUB socket's connections; SyncWire and
	// RecoveryWire the sync and recovery endpoints' (RecoveryWire is zero
	// when recovery is off).
	Wire         PubWireStats
	SyncWire     EndpointStats
	RecoveryWire EndpointStats

	// Multi counts the Batches that held records of several topics and
	// went as one MULTI to the connections on that form (MultiConns now)
	// and, when there were others, as DATA messages to them.
	Multi      uint64
	MultiConns int

	// CatchUps counts data connections taken off the live stream to be
	// fed from the retained store at their own pace (SlowCatchUp),
	// CatchUpsMerged those of them that caught up and went back on it,
	// CatchUpBytes the bytes fed that way. CatchingUp is how many are
	// being fed now. CatchUpHolds counts the times publishing held new
	// batches back because every joined subscriber was catching up (the
	// publisher goes at the pace of the fastest of them).
	CatchUps, CatchUpsMerged, CatchUpBytes, CatchUpHolds uint64
	CatchingUp                                           int
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (p *Publisher) Stats() PublisherStats {
	st := PublisherStats{
		Published:      p.published.Load(),
		PublishedBytes: p.publishedBytes.Load(),
		Batches:        p.batches.Load(),
		Control:        p.controls.Load(),
		Kicked:         p.kicked.Load(),
		KeepFailed:     p.keepFailed.Load(),
		Handshakes:     p.handshakes.Load(),
		Wire:           PubWireStats(p.pub.Stats()),
		SyncWire:       EndpointStats(p.sync.Stats()),
		Multi:          p.multiBatches.Load(),
		CatchUps:       p.catchUps.Load(),
		CatchUpsMerged: p.caughtUpMerged.Load(),
		CatchUpBytes:   p.caughtUpBytes.Load(),
		CatchUpHolds:   p.catchUpHolds.Load(),
		CatchingUp:     int(p.catchingUp.Load()),

		CoalescedEvents: p.connEvs.coalesced.Load(),
	}
	p.mu.Lock()
	c := p.core
	st.Joined, st.Topics = len(c.q.counted), len(c.topics)
	st.MultiConns = c.multiConns
	st.Live, st.Need, st.QuorumLost = c.q.live(), c.q.need(), c.q.lost()
	st.Quorum, st.QuorumAt = c.q.reached(), c.q.reachedAt
	st.Publishing = c.phase == phasePublishing
	st.Forgotten, st.FullPerIP = c.forgotten, c.fullAddr
	st.Refused = make(map[string]uint64, len(c.refused))
	for code, n := range c.refused {
		st.Refused[code] = n
	}
	p.mu.Unlock()
	if p.rec != nil {
		st.Recovery = p.rec.stats()
		if p.rec.srv != nil {
			st.RecoveryWire = EndpointStats(p.rec.srv.Stats())
		}
	}
	if p.store != nil {
		p.store.stats(&st)
	}
	return st
}
