package coord

import (
	"fmt"

	"github.com/syncmq/syncmq/envelope"
)

// EventType says what an Event reports.
type EventType int

// Event types, in the order a subscriber typically sees them.
const (
	// EventJoined: the handshake with a publisher completed (its ACK arrived).
	EventJoined EventType = iota + 1
	// EventMessage: one record, in sequence order.
	EventMessage
	// EventLoss: records From..To of Topic are missing and will not be
	// delivered; Cause says why.
	EventLoss
	// EventCaughtUp: a repaired gap is closed; delivery is live again at Seq.
	EventCaughtUp
	// EventRestart: the publisher came back with a new Epoch.
	EventRestart
	// EventEnd: the publisher's epoch is over. Cause is empty when it sent
	// END and every topic's final sequence was checked; EndQuorumFailed
	// when it gave the epoch up (its quorum failed) before END;
	// EndPublisherGone when nothing arrived from it for PublisherTimeout
	// (its streams' unknown tails were reported as EventLoss first).
	EventEnd
	// EventDisconnected and EventConnected report the data connection.
	EventDisconnected
	EventConnected
)

func (t EventType) String() string {
	switch t {
	case EventJoined:
		return "joined"
	case EventMessage:
		return "message"
	case EventLoss:
		return "loss"
	case EventCaughtUp:
		return "caught-up"
	case EventRestart:
		return "restart"
	case EventEnd:
		return "end"
	case EventDisconnected:
		return "disconnected"
	case EventConnected:
		return "connected"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Causes of an EventEnd that is not a completed job.
const (
	// EndQuorumFailed: the publisher sent ABORT before END; its quorum
	// timed out and it published nothing, or not everything.
	EndQuorumFailed = "quorum-failed"
	// EndPublisherGone: nothing arrived from the publisher for
	// PublisherTimeout.
	EndPublisherGone = "publisher-gone"
)

// Event is what a Subscriber hands its Handler. Fields not meaningful for
// a Type are zero.
type Event struct {
	Type      EventType
	Publisher envelope.ID
	Epoch     uint64
	Topic     string
	// Seq is the record's sequence (EventMessage, EventCaughtUp).
	Seq uint64
	// Payload is valid only during the Handler call; see SubscriberConfig.Handler.
	Payload []byte
	// Time is the publish time in Unix nanoseconds (EventMessage).
	Time int64
	// Replay is true for a record delivered from the publisher's history.
	Replay bool
	// Data is set on the EventMessage of the first record of a DATA or
	// MULTI message that arrived live and in order, so that its records
	// are delivered one after the other, this one and the Count-1 that
	// follow: it is that message as it arrived (checked), for a relay
	// that forwards it whole (coord.Publisher.Forward). nil on other
	// events. Like Payload, it is valid only during the Handler call.
	Data *envelope.Message
	// From and To bound the missing range of an EventLoss, inclusive.
	// For an open-ended loss To is 0.
	From, To uint64
	// OpenEnded marks an EventLoss whose end nobody knows: the publisher
	// went away or restarted without END, so whatever it published from
	// From on never arrived, and how much that was is unknown. Such a
	// loss is counted in SubscriberStats.UnknownTails, not in Lost.
	OpenEnded bool
	// Cause labels an EventLoss (a recovery.Cause name) and an abnormal
	// EventEnd.
	Cause string
	// Endpoint is the PUB endpoint of EventConnected, EventDisconnected
	// and EventJoined.
	Endpoint string
	// Err explains EventDisconnected and an abnormal EventEnd.
	Err error
}
