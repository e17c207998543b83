package coord

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/diagnose"
	"github.com/syncmq/syncmq/recovery"
)

type subscriberCounters struct {
	received, recovered, lost, lossEvents, duplicates, malformed, stale, handshakes, handshakeErrors, disconnects, restarts, unknownTails atomic.Uint64
	receivedBytes, reconnects, otherVersion                                                                                               atomic.Uint64
	latency                                                                                                                               latencyHistogram
	tally                                                                                                                                 deliveryTally // owned by run

	// Summed over the streams by refreshStreamStats, on the subscriber's
	// tick: the streams count without atomics.
	gapsDetected, repairRequests, repairTimeouts, overflows, shed atomic.Uint64
	held, heldBytes, lag                                          atomic.Int64
	connected, joined, repairing                                  atomic.Int64
}

// SubscriberStats is a snapshot of a Subscriber's counters and gauges.
// The counters only grow. Fields marked "tick" are refreshed by the
// subscriber's goroutine every 20 ms while it is not inside the Handler
// (a Handler that blocks freezes them), and once more by Close.
type SubscriberStats struct {
	Received      uint64 // records delivered to the handler
	ReceivedBytes uint64 // payload bytes of those records (tick)
	Recovered     uint64 // of those, records repaired over the recovery channel
	Lost          uint64 // records reported in EventLoss events with a range
	LossEvents    uint64 // EventLoss events with a range (To > 0)
	Duplicates    uint64 // records received again, or from before the join, and dropped (tick)
	Malformed     uint64 // messages that failed to decode
	// OtherVersion counts those of Malformed whose header carries an
	// envelope version this subscriber does not speak (a publisher of a
	// later protocol): dropped like the rest, and logged.
	OtherVersion    uint64
	Stale           uint64 // records of an older epoch after a restart
	Handshakes      uint64
	HandshakeErrors uint64
	Disconnects     uint64 // data connections lost
	Reconnects      uint64 // data connections established again after one was lost
	Restarts        uint64 // new publisher epochs seen
	// UnknownTails counts streams whose end could not be known: their
	// publisher restarted or went silent without END, so what it
	// published after the last record received was reported as an
	// open-ended EventLoss (To 0), not counted in Lost.
	UnknownTails uint64
	// LostByCause splits Lost by the cause its EventLoss named; causes
	// with nothing lost are absent.
	LostByCause map[recovery.Cause]uint64
	// Gaps counts the gaps the streams found, whether repaired or lost
	// (tick); RepairRequests the ranges they asked the recovery
	// channel for; RepairTimeouts the repairs given up after
	// StreamConfig.RepairTimeout without progress; Overflows the gaps
	// given up because the records held behind them reached
	// StreamConfig.MaxHeldBytes while the range behind was too far to
	// repair (tick).
	Gaps, RepairRequests, RepairTimeouts, Overflows uint64
	// HeldShed counts held records let go at StreamConfig.MaxHeldBytes to
	// be repaired again after the gaps before them (tick).
	HeldShed uint64
	// Held and HeldBytes are the records held behind gaps now, and their
	// memory in bytes (tick).
	Held      int
	HeldBytes int64
	// Lag is how many records the latest heartbeat (or ACK, or END) of
	// each publisher said were published that have not been delivered or
	// reported lost yet, summed over the streams (tick). Records still in
	// the socket's queues are not seen by the subscriber and not counted.
	Lag uint64
	// Connected counts the publishers whose data connection is up,
	// Joined the publisher incarnations joined and not ended, Repairing
	// the streams with a gap being repaired (all tick).
	Connected, Joined, Repairing int
	// Latency is the publish-to-deliver latency of the records delivered
	// live (tick).
	Latency LatencyHistogram
}

// Stats returns a snapshot of the counters. Safe from any goroutine; it
// takes no lock the delivery path takes.
func (s *Subscriber) Stats() SubscriberStats {
	c := &s.stats
	st := SubscriberStats{
		Received: c.received.Load(), ReceivedBytes: c.receivedBytes.Load(), Recovered: c.recovered.Load(), Lost: c.lost.Load(),
		LossEvents: c.lossEvents.Load(), Duplicates: c.duplicates.Load(), Malformed: c.malformed.Load(), OtherVersion: c.otherVersion.Load(), Stale: c.stale.Load(),
		Handshakes: c.handshakes.Load(), HandshakeErrors: c.handshakeErrors.Load(), Disconnects: c.disconnects.Load(),
		Reconnects: c.reconnects.Load(), Restarts: c.restarts.Load(), UnknownTails: c.unknownTails.Load(),
		Gaps: c.gapsDetected.Load(), RepairRequests: c.repairRequests.Load(), RepairTimeouts: c.repairTimeouts.Load(),
		Overflows: c.overflows.Load(), HeldShed: c.shed.Load(), Held: int(c.held.Load()), HeldBytes: c.heldBytes.Load(), Lag: uint64(c.lag.Load()),
		Connected: int(c.connected.Load()), Joined: int(c.joined.Load()), Repairing: int(c.repairing.Load()),
		Latency: c.latency.snapshot(),
	}
	s.evidMu.Lock()
	st.LostByCause = maps.Clone(s.evid.lostByCause)
	s.evidMu.Unlock()
	return st
}

// evidence collects what Diagnose needs beyond the counters.
type evidence struct {
	topics      map[string]struct{} // topics seen in heartbeat and END tables
	joinedLate  bool
	beforeJoin  uint64
	lostByCause map[recovery.Cause]uint64
	unknown     map[recovery.Cause]int // streams whose tail is unknown
}

const maxEvidenceTopics = 4096

func (e *evidence) sawTopic(mu *sync.Mutex, t string) {
	mu.Lock()
	defer mu.Unlock()
	if len(e.topics) < maxEvidenceTopics {
		e.topics[t] = struct{}{}
	}
}

func (e *evidence) joined(mu *sync.Mutex, before uint64) {
	mu.Lock()
	defer mu.Unlock()
	if before > 0 {
		e.joinedLate = true
		e.beforeJoin += before
	}
}

func (e *evidence) lost(mu *sync.Mutex, c recovery.Cause, n uint64) {
	mu.Lock()
	defer mu.Unlock()
	if e.lostByCause == nil {
		e.lostByCause = make(map[recovery.Cause]uint64)
	}
	e.lostByCause[c] += n
}

// unknownTail records a stream whose end was lost without its length.
func (e *evidence) unknownTail(mu *sync.Mutex, c recovery.Cause) {
	mu.Lock()
	defer mu.Unlock()
	if e.unknown == nil {
		e.unknown = make(map[recovery.Cause]int)
	}
	e.unknown[c]++
}

// Evidence returns what this subscriber has seen, in the form
// diagnose.Diagnose walks the zguide's missing-message flowchart with.
// Safe from any goroutine.
func (s *Subscriber) Evidence() diagnose.Evidence {
	st := s.Stats()
	s.evidMu.Lock()
	defer s.evidMu.Unlock()
	subs := s.cfg.Subscribe
	if len(subs) == 0 {
		subs = []string{""}
	}
	return diagnose.Evidence{
		Subscriptions:           slices.Clone(subs),
		TopicsPublished:         slices.Sorted(maps.Keys(s.evid.topics)),
		JoinedAfterPublishStart: s.evid.joinedLate,
		MessagesBeforeJoin:      s.evid.beforeJoin,
		HandshakeErrors:         int(st.HandshakeErrors),
		GapsWhileConnected:      st.LossEvents,
		Reconnects:              int(st.Disconnects),
		PublisherRestarts:       int(st.Restarts),
		LostMessages:            st.Lost,
		RecoveredMessages:       st.Recovered,
		LostByCause:             maps.Clone(s.evid.lostByCause),
		UnknownTails:            maps.Clone(s.evid.unknown),
		Received:                st.Received,
		Checked:                 true,
		Joined:                  st.Handshakes > 0,
		StartedAtJoin:           s.cfg.StartAt == StartAtJoin,
	}
}

// delivered tallies one record delivered to the Handler, of the batch
// sent at sent (Event.Time, Unix ns). Called by run only: this is the
// hot path, so it touches no shared counter unless a new batch starts.
func (c *subscriberCounters) delivered(sent int64, size int, replayed bool) {
	t := &c.tally
	if sent != t.sent {
		c.flushTally()
		t.sent, t.received = sent, timeNow()
	}
	t.size += uint64(size)
	if !replayed {
		t.live++
	}
}

// flushTally adds the tally to the shared counters. A batch without a
// time (a publisher that does not stamp it) has no latency.
func (c *subscriberCounters) flushTally() {
	t := &c.tally
	if t.live > 0 && t.sent != 0 {
		c.latency.observe(t.received.Sub(time.Unix(0, t.sent)), t.live)
	}
	if t.size > 0 {
		c.receivedBytes.Add(t.size)
	}
	t.live, t.size = 0, 0
}

// streamTotals are the counters of streams that are gone (their
// publisher incarnation was replaced), kept so the sums never go down.
type streamTotals struct {
	duplicates, gaps, requests, timeouts, overflows, shed uint64
}

func (t *streamTotals) add(st recovery.StreamStats) {
	t.duplicates += st.Duplicates
	t.gaps += st.Gaps
	t.requests += st.Requests
	t.timeouts += st.Timeouts
	t.overflows += st.Overflows
	t.shed += st.Shed
}

// refreshStreamStats sums what the streams count without atomics into
// the shared counters, with the gauges only run can compute, and flushes
// the delivery tally. Called by run on every tick, or after run has
// exited.
func (s *Subscriber) refreshStreamStats() {
	s.stats.flushTally()
	t := s.retired
	var held, heldBytes, lag int64
	var joined int64
	count := func(ps *pubState) {
		for _, ts := range ps.streams {
			st := ts.st.Stats()
			t.add(st)
			held += int64(st.Held)
			heldBytes += st.HeldBytes
			if done := ts.st.Next() - 1; ts.heard > done {
				lag += int64(ts.heard - done)
			}
		}
	}
	for _, ps := range s.pubs {
		if ps.joined && !ps.finished {
			joined++
		}
		count(ps)
	}
	for _, old := range s.old { // earlier epochs still repairing from a journal
		count(old)
	}
	c := &s.stats
	c.duplicates.Store(t.duplicates)
	c.gapsDetected.Store(t.gaps)
	c.repairRequests.Store(t.requests)
	c.repairTimeouts.Store(t.timeouts)
	c.overflows.Store(t.overflows)
	c.shed.Store(t.shed)
	c.held.Store(held)
	c.heldBytes.Store(heldBytes)
	c.lag.Store(lag)
	c.joined.Store(joined)
	c.repairing.Store(int64(len(s.repair)))
	var connected int64
	s.mu.Lock()
	for _, l := range s.links {
		if l.up {
			connected++
		}
	}
	s.mu.Unlock()
	c.connected.Store(connected)
}

// noteConnection counts a data connection to endpoint that came up or
// went down. Called by run only, which owns link.up and link.wasUp.
func (s *Subscriber) noteConnection(endpoint string, up bool) {
	if !up {
		s.stats.disconnects.Add(1)
	}
	l := s.linkFor(endpoint)
	if l == nil {
		return
	}
	if up && l.wasUp {
		s.stats.reconnects.Add(1)
	}
	l.up = up
	l.wasUp = l.wasUp || up
}
