package coord

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/syncmq/syncmq/diagnose"
	"github.com/syncmq/syncmq/recovery"
)

type subscriberCounters struct {
	received, recovered, lost, gaps, duplicates, malformed, stale, handshakes, handshakeErrors, disconnects, restarts, unknownTails atomic.Uint64
}

// SubscriberStats is a snapshot of a Subscriber's counters.
type SubscriberStats struct {
	Received        uint64 // records delivered to the handler
	Recovered       uint64 // of those, records repaired over the recovery channel
	Lost            uint64 // records reported in EventLoss
	Gaps            uint64 // EventLoss events
	Duplicates      uint64 // records received again, or from before the join, and dropped
	Malformed       uint64 // messages that failed to decode
	Stale           uint64 // records of an older epoch after a restart
	Handshakes      uint64
	HandshakeErrors uint64
	Disconnects     uint64
	Restarts        uint64 // new publisher epochs seen
	// UnknownTails counts streams whose end could not be known: their
	// publisher restarted or went silent without END, so what it
	// published after the last record received was reported as an
	// open-ended EventLoss (To 0), not counted in Lost.
	UnknownTails uint64
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (s *Subscriber) Stats() SubscriberStats {
	c := &s.stats
	return SubscriberStats{
		Received: c.received.Load(), Recovered: c.recovered.Load(), Lost: c.lost.Load(), Gaps: c.gaps.Load(), Duplicates: c.duplicates.Load(),
		Malformed: c.malformed.Load(), Stale: c.stale.Load(), Handshakes: c.handshakes.Load(),
		HandshakeErrors: c.handshakeErrors.Load(), Disconnects: c.disconnects.Load(), Restarts: c.restarts.Load(),
		UnknownTails: c.unknownTails.Load(),
	}
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
		GapsWhileConnected:      st.Gaps,
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

// sumDuplicates refreshes the duplicate counter from the streams, which
// count them without atomics. Called by run, or after run has exited.
func (s *Subscriber) sumDuplicates() {
	n := s.retiredDuplicates
	for _, ps := range s.pubs {
		for _, ts := range ps.streams {
			n += ts.st.Stats().Duplicates
		}
	}
	s.stats.duplicates.Store(n)
}
