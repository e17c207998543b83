package coord

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/syncmq/syncmq/proto/handshake"
)

var (
	// ErrClosed is returned by operations on a closed Publisher or Subscriber.
	ErrClosed = errors.New("coord: closed")
	// ErrQuorumTimeout means the quorum was not reached within
	// QuorumTimeout and the policy is QuorumFail. The returned error is a
	// *QuorumError that says how many subscribers joined.
	ErrQuorumTimeout = errors.New("coord: quorum timeout")
	// ErrHandshake is matched by every *handshake.Error.
	ErrHandshake = handshake.ErrFailed
	// ErrBadTopic means a topic is empty, too long or starts with a zero byte.
	ErrBadTopic = errors.New("coord: bad topic")
	// ErrTooManyTopics means a new topic would exceed MaxTopics.
	ErrTooManyTopics = errors.New("coord: too many topics")
	// ErrPayloadTooLarge means a payload exceeds MaxPayload.
	ErrPayloadTooLarge = errors.New("coord: payload too large")
)

// QuorumError says how far the quorum got before the deadline.
type QuorumError struct {
	Joined, Expect int
}

func (e *QuorumError) Error() string {
	return fmt.Sprintf("coord: quorum timeout: %d of %d subscribers joined", e.Joined, e.Expect)
}

// Unwrap makes a QuorumError match ErrQuorumTimeout.
func (e *QuorumError) Unwrap() error { return ErrQuorumTimeout }

// ErrUnconfirmed is matched by every *EndError: the epoch ended without
// every subscriber that joined confirming it got everything.
var ErrUnconfirmed = errors.New("coord: not every subscriber confirmed the end")

// EndError is what Publisher.Shutdown returns when the epoch ended but
// not every subscriber that joined it confirmed, with a BYE, that it got
// everything up to END. Each id is in one of the two lists.
type EndError struct {
	// Unconfirmed lists the subscribers that said no BYE: their
	// connection went away and did not come back within RepairWindow, or
	// they were still catching up when Shutdown's ctx ended. Sorted.
	Unconfirmed []string
	// Lost maps the subscribers that said BYE but were told they lost
	// records to how many.
	Lost map[string]uint64
	// Err is ctx.Err() when Shutdown's ctx ended while subscribers were
	// still waited for, else nil.
	Err error
}

func (e *EndError) Error() string {
	var b strings.Builder
	b.WriteString("coord: ")
	if n := len(e.Unconfirmed); n > 0 {
		fmt.Fprintf(&b, "%d subscriber(s) did not confirm the end: %s", n, strings.Join(e.Unconfirmed, ", "))
		if e.Err != nil {
			fmt.Fprintf(&b, " (%v)", e.Err)
		}
	}
	if len(e.Lost) > 0 {
		if len(e.Unconfirmed) > 0 {
			b.WriteString("; ")
		}
		ids := slices.Sorted(maps.Keys(e.Lost))
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprintf("%s lost %d", id, e.Lost[id])
		}
		fmt.Fprintf(&b, "subscribers that lost records: %s", strings.Join(parts, ", "))
	}
	return b.String()
}

// Is makes an EndError match ErrUnconfirmed.
func (e *EndError) Is(target error) bool { return target == ErrUnconfirmed }

// Unwrap returns ctx.Err(), if Shutdown's ctx ended first.
func (e *EndError) Unwrap() error { return e.Err }

// err is the result of an end that settled (ctxErr nil) or was cut short
// by ctx: nil when every subscriber confirmed with nothing lost.
func (st endState) err(ctxErr error) error {
	if len(st.waiting) == 0 && len(st.lossy) == 0 {
		return ctxErr
	}
	return &EndError{Unconfirmed: st.waiting, Lost: st.lossy, Err: ctxErr}
}
