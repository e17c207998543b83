package recovery

import "fmt"

// Cause says why a range of messages was lost. Stream labels every Loss
// with one; docs/runbook.md has a section per Cause. The zero value is
// CauseUnknown.
type Cause uint8

// Causes of loss. String returns the name in parentheses, which is what
// logs, metrics labels and the runbook use.
const (
	// CauseUnknown (unknown): no better explanation, e.g. the publisher
	// claimed a complete replay that never arrived.
	CauseUnknown Cause = iota
	// CauseBeforeJoin (before-join): the messages were published before
	// this subscriber's SUB socket was connected (the zguide "slow joiner"),
	// and could not be replayed.
	CauseBeforeJoin
	// CauseSlowConsumer (slow-consumer): the subscriber fell behind: the
	// publisher disconnected it as a slow consumer (caller hint), or the
	// stream held MaxHeldBytes of records while a repair was outstanding and had to
	// give the oldest gap up.
	CauseSlowConsumer
	// CausePublisherOverflow (publisher-overflow): the publisher's send
	// queue (PUB high-water mark) dropped the messages (caller hint).
	CausePublisherOverflow
	// CausePublisherRestart (publisher-restart): the publisher restarted
	// with a new epoch, so the old epoch's history is gone.
	CausePublisherRestart
	// CauseReconnect (reconnect): the transport reconnected and messages
	// sent meanwhile could not be replayed (caller hint).
	CauseReconnect
	// CauseBeyondRetention (beyond-retention): the publisher no longer
	// holds the messages in its History.
	CauseBeyondRetention
	// CauseTimeout (timeout): the repair made no progress for
	// StreamConfig.RepairTimeout; or, after the publisher's END, no
	// repair brought a record for the subscriber's PublisherTimeout and
	// every gap left was given up at once.
	CauseTimeout
	// CausePublisherGone (publisher-gone): nothing arrived from the
	// publisher (no data, heartbeat or HELLO) for the subscriber's
	// PublisherTimeout before its END: what it published after the last
	// thing received is unknown and reported lost.
	CausePublisherGone

	numCauses
)

var causeNames = [numCauses]string{
	CauseUnknown:           "unknown",
	CauseBeforeJoin:        "before-join",
	CauseSlowConsumer:      "slow-consumer",
	CausePublisherOverflow: "publisher-overflow",
	CausePublisherRestart:  "publisher-restart",
	CauseReconnect:         "reconnect",
	CauseBeyondRetention:   "beyond-retention",
	CauseTimeout:           "timeout",
	CausePublisherGone:     "publisher-gone",
}

// Causes returns every Cause, in declaration order.
func Causes() []Cause {
	cs := make([]Cause, numCauses)
	for i := range cs {
		cs[i] = Cause(i)
	}
	return cs
}

// String returns the cause's name, e.g. "before-join", or "Cause(n)".
func (c Cause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return fmt.Sprintf("Cause(%d)", uint8(c))
}

// MarshalText returns String, so a Cause logs and encodes as its name.
func (c Cause) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses a name String returns.
func (c *Cause) UnmarshalText(b []byte) error {
	p, err := ParseCause(string(b))
	if err != nil {
		return err
	}
	*c = p
	return nil
}

// ParseCause returns the Cause whose String is s.
func ParseCause(s string) (Cause, error) {
	for i, n := range causeNames {
		if n == s {
			return Cause(i), nil
		}
	}
	return CauseUnknown, fmt.Errorf("recovery: unknown cause %q", s)
}
