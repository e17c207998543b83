package membership

import "strconv"

// State is a member's liveness as this node sees it.
type State uint8

// Member states. Suspected members count as alive, as in memberlist.
const (
	StateAlive State = iota
	// StateLeft means the member left gracefully (Node.Shutdown).
	StateLeft
	// StateFailed means the member stopped answering probes and was
	// declared dead, or left without announcing it.
	StateFailed
)

// String returns "alive", "left" or "failed".
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateLeft:
		return "left"
	case StateFailed:
		return "failed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Member is a cluster member as seen by this node. It is a value: it does
// not change when the member does.
type Member struct {
	// Name is the memberlist node name, unique among live members.
	Name string
	// Addr is the member's gossip address, "host:port".
	Addr string
	// Meta is the member's decoded metadata.
	Meta Meta
	// State is StateAlive for Members; EventLeave and EventFailed carry
	// StateLeft and StateFailed.
	State State
	// Local is true for this node itself.
	Local bool
}

// EventType says what happened to a member.
type EventType uint8

// Event types. Events describe other members only; the local node's own
// changes are not reported.
const (
	// EventJoin: a member with valid metadata appeared, or a member whose
	// metadata was invalid sent valid metadata.
	EventJoin EventType = iota + 1
	// EventUpdate: a member changed its metadata. Meta.Leaving set means
	// it is about to leave.
	EventUpdate
	// EventLeave: a member left gracefully.
	EventLeave
	// EventFailed: a member stopped answering and was declared dead, or
	// left without its leave announcement reaching this node.
	EventFailed
	// EventInvalid: a member sent metadata that does not decode. It is
	// not (or no longer) in Members and should be treated as gone until
	// it sends valid metadata (EventJoin). Event.Err says why.
	EventInvalid
)

// String returns "join", "update", "leave", "failed" or "invalid".
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	case EventFailed:
		return "failed"
	case EventInvalid:
		return "invalid"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Event is a change in cluster membership.
type Event struct {
	Type EventType
	// Member is the member after the change. For EventInvalid its Meta is
	// the zero value.
	Member Member
	// Err is the decoding error for EventInvalid, wrapping ErrBadMeta;
	// nil otherwise.
	Err error
}

// Stats are counters of a Node.
type Stats struct {
	// Members is the number of members in Members, this node included.
	Members int
	// DroppedEvents counts events discarded because the event queue was
	// full (see Config.EventBuffer).
	DroppedEvents uint64
	// InvalidMeta counts metadata from peers that failed to decode.
	InvalidMeta uint64
	// Warnings counts memberlist's warn and error lines (garbage on the
	// gossip port, failed probes), those the log's rate limit held back
	// included: one line per kind per 10 s is written.
	Warnings uint64
}
