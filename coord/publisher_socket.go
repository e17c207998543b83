package coord

import (
	"context"
	"net"

	"github.com/syncmq/syncmq/internal/wire"
)

// pubSocket is the PUB socket as the Publisher uses it: *wire.Pub on the
// network, a simulated one in the simulator. Connection events reach the
// Publisher through onPeerEvent.
type pubSocket interface {
	Send(ctx context.Context, m *wire.Msg) error
	SendTo(ctx context.Context, id wire.ConnID, m *wire.Msg) (bool, error)
	Kick(id wire.ConnID, err error)
	SetClass(id wire.ConnID, c wire.Class) bool
	// For catch-up (publisher_catchup.go).
	TakeBehind(dst []wire.ConnID) []wire.ConnID
	Offer(id wire.ConnID, m *wire.Msg) (int64, bool)
	Queued(id wire.ConnID) (int64, bool)
	Subscribed(id wire.ConnID, topic []byte) bool
	Close() error
	Endpoint() string
	Addr() net.Addr
	Stats() wire.PubStats
}

var _ pubSocket = (*wire.Pub)(nil)
