package membership

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// metaDelegate implements memberlist.Delegate: it serves this node's
// encoded metadata and ignores user messages and state exchange.
type metaDelegate struct {
	mu   sync.Mutex
	meta Meta
	enc  []byte
}

var _ memberlist.Delegate = (*metaDelegate)(nil)

// set replaces the local metadata; enc must be meta's encoding.
func (d *metaDelegate) set(meta Meta, enc []byte) {
	meta.Topics = slices.Clone(meta.Topics)
	d.mu.Lock()
	d.meta, d.enc = meta, enc
	d.mu.Unlock()
}

// get returns a copy of the local metadata.
func (d *metaDelegate) get() Meta {
	d.mu.Lock()
	m := d.meta
	d.mu.Unlock()
	m.Topics = slices.Clone(m.Topics)
	return m
}

// NodeMeta returns a copy of the encoded metadata, or nil if it exceeds
// limit (it never does: the encoding is at most MetaMaxSize bytes).
func (d *metaDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.enc) > limit {
		return nil
	}
	return slices.Clone(d.enc)
}

// NotifyMsg ignores user messages; this package sends none.
func (d *metaDelegate) NotifyMsg([]byte) {}

// GetBroadcasts has nothing to broadcast.
func (d *metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState has no state to exchange.
func (d *metaDelegate) LocalState(bool) []byte { return nil }

// MergeRemoteState ignores remote state.
func (d *metaDelegate) MergeRemoteState([]byte, bool) {}

// tracker implements memberlist.EventDelegate. It keeps this package's own
// copy of the member table, because the *memberlist.Node values memberlist
// hands out are modified under memberlist's lock and cannot be read safely
// later. memberlist calls it with that lock held and never concurrently,
// so it must not block and must not call back into memberlist.
type tracker struct {
	self    string
	log     *zap.Logger
	sink    *sink
	invalid atomic.Uint64

	mu      sync.Mutex
	members map[string]Member   // live members with valid metadata, self included
	bad     map[string]struct{} // live members whose metadata did not decode
}

var _ memberlist.EventDelegate = (*tracker)(nil)

func newTracker(self string, log *zap.Logger, s *sink) *tracker {
	return &tracker{
		self:    self,
		log:     log,
		sink:    s,
		members: make(map[string]Member),
		bad:     make(map[string]struct{}),
	}
}

// NotifyJoin records a member that became alive.
func (t *tracker) NotifyJoin(n *memberlist.Node) { t.observe(n) }

// NotifyUpdate records a member whose metadata changed.
func (t *tracker) NotifyUpdate(n *memberlist.Node) { t.observe(n) }

// observe decodes n's metadata and records n as a valid or invalid member,
// emitting EventJoin, EventUpdate or EventInvalid.
func (t *tracker) observe(n *memberlist.Node) {
	m := Member{Name: n.Name, Addr: n.Address(), State: StateAlive, Local: n.Name == t.self}
	meta, err := UnmarshalMeta(n.Meta)

	t.mu.Lock()
	defer t.mu.Unlock()
	_, known := t.members[n.Name]
	if err != nil {
		delete(t.members, n.Name)
		t.bad[n.Name] = struct{}{}
		t.invalid.Add(1)
		t.log.Warn("ignoring member with invalid metadata",
			zap.String("node", n.Name), zap.String("addr", m.Addr), zap.Error(err))
		t.emit(Event{Type: EventInvalid, Member: m, Err: err})
		return
	}
	m.Meta = meta
	t.members[n.Name] = m
	delete(t.bad, n.Name)
	typ := EventJoin
	if known {
		typ = EventUpdate
	}
	t.emit(Event{Type: typ, Member: m})
}

// NotifyLeave removes a member that left or was declared dead. memberlist
// v0.7.0 never sets Node.State (nodeState shadows it), so a graceful leave
// is recognised by the Leaving flag the member gossiped beforehand; a
// StateLeft from a fixed memberlist is honoured too.
func (t *tracker) NotifyLeave(n *memberlist.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, known := t.members[n.Name]
	delete(t.members, n.Name)
	delete(t.bad, n.Name)
	if !known {
		t.log.Debug("member with invalid metadata is gone", zap.String("node", n.Name))
		return
	}
	typ, state := EventFailed, StateFailed
	if m.Meta.Leaving || n.State == memberlist.StateLeft {
		typ, state = EventLeave, StateLeft
	}
	m.State = state
	t.emit(Event{Type: typ, Member: m})
}

// emit queues ev unless it concerns the local node. t.mu must be held, so
// that events are queued in the order they were observed.
func (t *tracker) emit(ev Event) {
	if ev.Member.Local {
		return
	}
	ev.Member.Meta.Topics = slices.Clone(ev.Member.Meta.Topics)
	t.sink.push(ev)
}

// list returns the valid live members sorted by name, as copies.
func (t *tracker) list() []Member {
	t.mu.Lock()
	out := make([]Member, 0, len(t.members))
	for _, m := range t.members {
		m.Meta.Topics = slices.Clone(m.Meta.Topics)
		out = append(out, m)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// get returns a copy of the named valid live member.
func (t *tracker) get(name string) (Member, bool) {
	t.mu.Lock()
	m, ok := t.members[name]
	t.mu.Unlock()
	m.Meta.Topics = slices.Clone(m.Meta.Topics)
	return m, ok
}

// count returns the number of valid live members.
func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.members)
}

// sink is the bounded event queue. push never blocks: when the queue is
// full the event is dropped and counted. After close, push does nothing.
type sink struct {
	mu      sync.Mutex
	closed  bool
	ch      chan Event
	dropped atomic.Uint64
}

func newSink(capacity int) *sink { return &sink{ch: make(chan Event, capacity)} }

// push queues ev or counts it as dropped.
func (s *sink) push(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.ch <- ev:
	default:
		s.dropped.Add(1)
	}
}

// close closes the queue; queued events stay readable. Idempotent.
func (s *sink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}
