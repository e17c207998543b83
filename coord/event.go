package coord

import (
	"fmt"

	"github.com/syncmq/syncmq/proto/envelope"
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
	// EventEnd: the publisher sent END; every topic's final sequence was checked.
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
	// From and To bound the missing range of an EventLoss, inclusive.
	From, To uint64
	// Cause labels an EventLoss.
	Cause string
	// Endpoint is the PUB endpoint of EventConnected, EventDisconnected
	// and EventJoined.
	Endpoint string
	// Err explains EventDisconnected.
	Err error
}
