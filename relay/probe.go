package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
)

// ErrNoUpstream is what Run returns when no HELLO came from upstream
// within ProbeTimeout.
var ErrNoUpstream = errors.New("relay: no HELLO from the upstream publisher")

// probe learns the upstream publisher's id and epoch from its first
// HELLO, before the relay joins as a subscriber.
func probe(ctx context.Context, endpoint string, tls *coord.TLS) (envelope.ID, uint64, error) {
	id, epoch, err := coord.ProbePublisher(ctx, endpoint, tls)
	if err != nil {
		return envelope.ID{}, 0, fmt.Errorf("%w at %s: %w", ErrNoUpstream, endpoint, err)
	}
	return id, epoch, nil
}
