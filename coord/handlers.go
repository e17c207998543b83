package coord

import "github.com/syncmq/syncmq/envelope"

// Handlers is a Handler in parts, for the common case: records per topic,
// losses, and the end of each publisher's epoch, with no type switch.
// Set SubscriberConfig.Handler to h.Handler(). Every callback is called
// from the subscriber's one goroutine, in the order the events happen,
// and may call Close or Shutdown; a slow callback pushes back on the
// publisher as a slow Handler does. Nil callbacks skip their events.
type Handlers struct {
	// OnMessage receives each record, per publisher and topic in
	// sequence order. Message.Payload is valid only during the call.
	OnMessage func(Message)
	// OnLoss receives each range that will never be delivered.
	OnLoss func(Loss)
	// OnEnd receives the end of a publisher's epoch: completed, or not
	// (End.Completed says which). Subscriber.Done and Err tell when every
	// publisher ended and how the job went.
	OnEnd func(End)
	// OnOther receives every other event (joined, caught-up, restart,
	// connected, disconnected), as a Handler would.
	OnOther func(Event)
}

// Handler returns the func(Event) that dispatches to h's callbacks.
func (h Handlers) Handler() func(Event) {
	return func(ev Event) {
		switch ev.Type {
		case EventMessage:
			if h.OnMessage != nil {
				h.OnMessage(Message{Publisher: ev.Publisher, Epoch: ev.Epoch, Topic: ev.Topic, Seq: ev.Seq,
					Payload: ev.Payload, Time: ev.Time, Replay: ev.Replay})
			}
		case EventLoss:
			if h.OnLoss != nil {
				h.OnLoss(Loss{Publisher: ev.Publisher, Epoch: ev.Epoch, Topic: ev.Topic, From: ev.From, To: ev.To,
					OpenEnded: ev.OpenEnded, Cause: ev.Cause})
			}
		case EventEnd:
			if h.OnEnd != nil {
				h.OnEnd(End{Publisher: ev.Publisher, Epoch: ev.Epoch, Completed: ev.Cause == "", Cause: ev.Cause, Err: ev.Err})
			}
		default:
			if h.OnOther != nil {
				h.OnOther(ev)
			}
		}
	}
}

// Message is one record (an EventMessage).
type Message struct {
	Publisher envelope.ID
	Epoch     uint64
	Topic     string
	Seq       uint64
	// Payload is valid only during the callback: copy it to keep it.
	Payload []byte
	// Time is the publish time in Unix nanoseconds.
	Time int64
	// Replay is true for a record delivered from the publisher's history.
	Replay bool
}

// Loss is a range of a topic that will never be delivered (an
// EventLoss).
type Loss struct {
	Publisher envelope.ID
	Epoch     uint64
	Topic     string
	// From and To bound the missing sequences, inclusive; To is 0 when
	// OpenEnded.
	From, To uint64
	// OpenEnded: the publisher went away or restarted without END, so
	// everything it published from From on is missing, and how much that
	// was nobody knows.
	OpenEnded bool
	// Cause says why, a recovery.Cause name: before-join, slow-consumer,
	// reconnect, publisher-restart, beyond-retention, timeout,
	// publisher-gone, ...
	Cause string
}

// Count is how many records the loss covers; 0 when it is open-ended
// (unknown).
func (l Loss) Count() uint64 {
	if l.OpenEnded || l.To < l.From {
		return 0
	}
	return l.To - l.From + 1
}

// End is the end of one publisher's epoch (an EventEnd).
type End struct {
	Publisher envelope.ID
	Epoch     uint64
	// Completed is set when the publisher sent END and every topic's last
	// sequence was checked; Cause is then empty.
	Completed bool
	// Cause, when not completed: EndQuorumFailed or EndPublisherGone.
	Cause string
	// Err explains an end that did not complete, when there is more to
	// say than Cause.
	Err error
}
