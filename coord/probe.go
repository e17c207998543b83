package coord

import (
	"context"
	"fmt"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
)

// ProbePublisher connects to a publisher's data endpoint (t: its TLS, nil
// without) and returns the publisher id and epoch its first HELLO names,
// or ctx's error if none comes first. A relay uses it to learn which
// publisher and epoch to serve before it joins. It does not join: nothing
// counts toward the quorum.
func ProbePublisher(ctx context.Context, endpoint string, t *TLS) (envelope.ID, uint64, error) {
	sub := wire.NewSub(wire.SubConfig{TLS: t.wireTLS()}, envelope.ControlTopic)
	defer sub.Close()
	if err := sub.Connect(endpoint); err != nil {
		return envelope.ID{}, 0, fmt.Errorf("coord: %s: %w", endpoint, err)
	}
	for {
		d, err := sub.Recv(ctx)
		if err != nil {
			return envelope.ID{}, 0, err
		}
		if d.Kind != wire.Message {
			continue
		}
		m, err := envelope.Decode(d.Frames, envelope.Limits{})
		if err != nil || m.Kind != envelope.KindHello {
			continue // a heartbeat or END may come first; only a HELLO names the epoch
		}
		return m.Publisher, m.Epoch, nil
	}
}
