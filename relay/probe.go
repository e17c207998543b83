package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
)

// ErrNoUpstream is what Run returns when no HELLO came from upstream
// within ProbeTimeout.
var ErrNoUpstream = errors.New("relay: no HELLO from the upstream publisher")

// probe connects to the upstream data endpoint, subscribed to the control
// topic only, and returns the publisher id and epoch of the first HELLO
// it receives. The connection proves nothing and closes: the upstream
// publisher forgets it.
func probe(ctx context.Context, endpoint string, tls *wire.TLS) (envelope.ID, uint64, error) {
	sub := wire.NewSub(wire.SubConfig{TLS: tls}, envelope.ControlTopic)
	defer sub.Close()
	if err := sub.Connect(endpoint); err != nil {
		return envelope.ID{}, 0, fmt.Errorf("relay: upstream %s: %w", endpoint, err)
	}
	for {
		d, err := sub.Recv(ctx)
		if err != nil {
			return envelope.ID{}, 0, fmt.Errorf("%w at %s: %w", ErrNoUpstream, endpoint, err)
		}
		if d.Kind != wire.Message {
			continue
		}
		m, err := envelope.Decode(d.Frames, envelope.Limits{})
		if err != nil || m.Kind != envelope.KindHello {
			continue // a heartbeat or END may come first; only a HELLO names the epoch to follow
		}
		return m.Publisher, m.Epoch, nil
	}
}
