package coord

import (
	"sync"
	"sync/atomic"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/ratelog"
	"github.com/syncmq/syncmq/internal/wire"
	"go.uber.org/zap"
)

// connEvents queues the PUB socket's connection events for the run
// loop, bounded however a peer behaves. The socket reports every new
// subscription prefix, so a connection that loops SUBSCRIBE and CANCEL
// (or subscribes ever new prefixes) makes events without end; the core
// only learns three things from them (subKinds), so a subscription that
// teaches it nothing new about its connection is dropped here, and a
// connection that comes and goes before run took its PeerConnected is
// dropped whole. What stays queued is at most a PeerConnected, three
// PeerSubscribed, a PeerSlow and a PeerDisconnected per connection the
// socket holds or just lost, whatever the churn.
//
// Safe for concurrent use: push is called from the socket's goroutines,
// take from run.
type connEvents struct {
	topics []string // PublisherConfig.Topics, for subKinds
	rl     *ratelog.Logger

	mu     sync.Mutex
	queued []queuedEvent
	conns  map[wire.ConnID]*connEventState

	coalesced atomic.Uint64
}

type queuedEvent struct {
	ev   wire.PeerEvent
	dead bool // dropped after it was queued
}

// connEventState is what the queue knows of one connection, from its
// PeerConnected to its PeerDisconnected.
type connEventState struct {
	kinds     subKind // the subscription kinds passed on so far
	queued    []int   // its events in queued, until the next take
	connected bool    // its PeerConnected is in queued
	dropped   int     // its subscription events dropped
}

// churnWarnAt is how many subscription events of one connection are
// dropped before the churn is worth a (rate-limited) warning: an honest
// subscriber sends a handful of prefixes once.
const churnWarnAt = 1024

func newConnEvents(topics []string, rl *ratelog.Logger) *connEvents {
	return &connEvents{topics: topics, rl: rl, conns: make(map[wire.ConnID]*connEventState)}
}

// push queues ev, or drops it (counted) when the core would learn
// nothing from it. It does not block.
func (q *connEvents) push(ev wire.PeerEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.conns[ev.Conn]
	switch ev.Type {
	case wire.PeerConnected:
		st = &connEventState{connected: true}
		q.conns[ev.Conn] = st
	case wire.PeerSubscribed:
		if st != nil {
			k := subKinds(q.topics, ev.Prefix)
			if k&^st.kinds == 0 {
				q.coalesced.Add(1)
				if st.dropped++; st.dropped == churnWarnAt {
					q.rl.Warn("subscription-churn", "a data connection keeps changing its subscriptions; the events are coalesced",
						zap.String("remote", ev.Remote), zap.Int("dropped", st.dropped))
				}
				return
			}
			st.kinds |= k
		}
	case wire.PeerDisconnected:
		if st != nil {
			delete(q.conns, ev.Conn)
			if st.connected {
				// Gone before run saw it come: the core never needs to know.
				for _, i := range st.queued {
					q.queued[i].dead = true
				}
				q.coalesced.Add(uint64(len(st.queued)) + 1)
				return
			}
		}
	}
	if st != nil {
		st.queued = append(st.queued, len(q.queued))
	}
	q.queued = append(q.queued, queuedEvent{ev: ev})
}

// take appends the queued events to dst, in the order they came, and
// empties the queue.
func (q *connEvents) take(dst []wire.PeerEvent) []wire.PeerEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.queued {
		if !e.dead {
			dst = append(dst, e.ev)
		}
	}
	clear(q.queued)
	q.queued = q.queued[:0]
	for _, st := range q.conns {
		st.queued, st.connected = st.queued[:0], false
	}
	return dst
}

// len returns the events queued now (dropped ones included until take).
func (q *connEvents) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queued)
}

// subKind is what a subscription prefix tells the core about its data
// connection (pubCore.dataSubscribed): that HELLOs reach it, that it
// takes data, and that it takes every topic the publisher may publish.
type subKind uint8

const (
	subControl subKind = 1 << iota // a prefix of the control topic
	subData                        // may match data topics
	subCovers                      // matches every topic this publisher may publish
)

// subKinds classifies prefix for a publisher announcing topics.
func subKinds(topics []string, prefix []byte) subKind {
	var k subKind
	if len(prefix) <= len(envelope.ControlTopic) && envelope.ControlTopic[:len(prefix)] == string(prefix) {
		k |= subControl
	}
	// Data topics never start with a zero byte: only a prefix that does
	// not either (or the empty one) can match them.
	if len(prefix) == 0 || prefix[0] != 0 {
		k |= subData
		if coversTopics(topics, prefix) {
			k |= subCovers
		}
	}
	return k
}

// coversTopics reports whether prefix matches every topic a publisher
// announcing topics may publish: it is a prefix of every announced topic
// prefix, or empty.
func coversTopics(topics []string, prefix []byte) bool {
	if len(topics) == 0 {
		return len(prefix) == 0
	}
	for _, t := range topics {
		if len(t) < len(prefix) || t[:len(prefix)] != string(prefix) {
			return false
		}
	}
	return true
}
