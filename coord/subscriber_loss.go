package coord

import (
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/recovery"
)

// processLoss feeds a LOSS message to its topic's stream: the range is
// reported lost with the cause the message names (one this subscriber
// does not know is reported as unknown).
func (s *Subscriber) processLoss(ps *pubState, m *envelope.Message, now time.Time) {
	l, _ := envelope.ParseLoss(m.Payload) // Decode validated it
	ts := s.dataStream(ps, []byte(l.Topic))
	if ts == nil {
		return
	}
	cause, _ := recovery.ParseCause(l.Cause)
	ts.st.Lost(l.From, l.To, cause, now)
}
