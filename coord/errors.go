package coord

import (
	"errors"
	"fmt"

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
