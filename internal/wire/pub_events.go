package wire

// ConnID identifies one accepted connection of a Pub. IDs are never
// reused in the life of a Pub.
type ConnID uint64

// PeerEventType says what happened to a connection.
type PeerEventType int

// Peer event types. For each connection the events come in this order:
// PeerConnected once, then PeerSubscribed for each prefix it adds, then,
// if it was cut as a slow consumer, PeerSlow, and last PeerDisconnected
// once. Events of different connections interleave.
const (
	PeerConnected PeerEventType = iota + 1
	PeerDisconnected
	// PeerSlow is reported just before a slow consumer's PeerDisconnected.
	PeerSlow
	// PeerSubscribed: the connection added a subscription prefix
	// (PeerEvent.Prefix); repeating a prefix it has is not reported.
	PeerSubscribed
)

func (t PeerEventType) String() string {
	switch t {
	case PeerConnected:
		return "connected"
	case PeerDisconnected:
		return "disconnected"
	case PeerSlow:
		return "slow-consumer"
	case PeerSubscribed:
		return "subscribed"
	}
	return "unknown"
}

// PeerEvent reports a change of one connection.
type PeerEvent struct {
	Type   PeerEventType
	Conn   ConnID
	Remote string
	// Identity is the peer's identity on a tls:// endpoint: CertIdentity
	// of the client certificate its TLS handshake verified, never what it
	// says in a message. "" on tcp://.
	Identity string
	// Prefix (PeerSubscribed) is the prefix added; the event owns it.
	Prefix []byte
	// Dropped (PeerSlow, PeerDisconnected) counts the messages addressed to
	// the connection that did not reach its kernel buffer: its queue, the
	// unwritten part of the batch being written, and messages that did not
	// fit under MaxQueueBytes.
	Dropped int
	// Err (PeerSlow, PeerDisconnected) is why the connection ended: nil
	// for an orderly hang-up, ErrSlowConsumer, ErrKicked,
	// ErrTooManySubscriptions (each wrapped with details), ErrClosed, or
	// the I/O or protocol error.
	Err error
}
