package coord

import (
	"errors"
	"strings"
	"time"

	"github.com/syncmq/syncmq/internal/wire"
)

// PubWireConfig tunes a publisher's data (PUB) endpoint: its queues, how
// slow consumers are cut, and the limits on connections and
// subscriptions. Zero fields take the defaults of DefaultPubWireConfig.
type PubWireConfig struct {
	// QueueBytes is the soft bound of each connection's queue, in bytes
	// (frame bytes plus 9 bytes of framing per frame). What happens at it
	// is PublisherConfig.SlowPolicy's: under SlowCatchUp Publish is paced
	// to the fastest matching subscriber, and a joined subscriber more
	// than 2 × QueueBytes behind is fed from the history at its own pace;
	// under SlowWait Publish waits while any joined subscriber has more
	// than QueueBytes queued; under SlowCut it waits only while every
	// matching subscriber has. Default 4 MiB; at least MinQueueBytes.
	QueueBytes int
	// MaxQueueBytes is the hard bound, in bytes. A connection whose queue
	// would exceed it is disconnected as a slow consumer (its subscriber
	// repairs the gap over the recovery endpoint). It also bounds the
	// total of queued bytes, each message counted once however many
	// connections hold it: when a send takes the total above it, the
	// connection furthest behind is disconnected, provided it is more than
	// 2 × QueueBytes behind. Default 64 MiB; at least QueueBytes.
	MaxQueueBytes int
	// SendBuffer sets each connection's kernel send buffer (SO_SNDBUF), in
	// bytes, on tcp://, tls:// and ipc://; Linux doubles it. Zero leaves it
	// to the OS. What a stalled subscriber holds in the kernel is not in
	// its queue: until that buffer is full, it paces publishing as if it
	// were fast.
	SendBuffer int
	// SlowTimeout is how long a write of at most 64 KiB to a subscriber
	// may take; a subscriber that does not take that much within it is
	// disconnected as a slow consumer. It does not apply while Shutdown
	// flushes to a subscriber it waits for: Shutdown's ctx bounds that.
	// Default 500 ms; at least MinSlowTimeout.
	SlowTimeout time.Duration
	// HandshakeTimeout bounds a new connection's ZMTP handshake (and its
	// TLS handshake on tls://). Default 2 s; at least MinHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxPending bounds the connections still in their handshake, all
	// addresses together. A new connection is never refused for it: at
	// the bound, the oldest handshake of the address holding the most is
	// closed to make room. Default 256; at least MaxPendingPerIP.
	MaxPending int
	// MaxPendingPerIP bounds the handshakes in progress from one source
	// IP address: a new connection from an address that has as many
	// closes that address's oldest handshake. Default 64.
	MaxPendingPerIP int
	// MaxPeers bounds connected subscribers; at the bound, a new
	// connection closes the oldest one that has not joined, and is
	// refused if every one has. Default 4096.
	MaxPeers int
	// MaxConnsPerIP bounds the connections (handshaking or connected)
	// from one source IP address, evicting as MaxPeers does. It bounds
	// the sync and recovery endpoints' connections from one address too
	// (there a new one closes that address's connection idle the
	// longest). Default 256.
	MaxConnsPerIP int
	// MaxSubscriptions bounds the distinct prefixes one connection may
	// subscribe; the connection that subscribes one more is closed.
	// Default 1024.
	MaxSubscriptions int
	// MaxSubscriptionBytes bounds the memory one connection's
	// subscriptions take, in bytes: each prefix counts its length plus
	// 32. The connection that subscribes beyond it is closed. Default
	// 64 KiB; at least MinSubscriptionBytes.
	MaxSubscriptionBytes int
	// SubscriptionBudget bounds the memory the subscriptions of all
	// connections take together, counted as for MaxSubscriptionBytes.
	// The subscription that takes the total above it closes the
	// connection that has not joined and holds the most, or the
	// subscribing connection if there is none. Default 16 MiB; at least
	// MaxSubscriptionBytes.
	SubscriptionBudget int
	// OnEvent, if set, is called for connects, subscriptions, disconnects
	// and slow consumers of data connections (see PeerEvent for their
	// order). It is called from the publisher's goroutines and must not
	// block.
	OnEvent func(PeerEvent)
}

// DefaultPubWireConfig returns the configuration zero fields default to.
func DefaultPubWireConfig() PubWireConfig {
	d := wire.DefaultPubConfig()
	return PubWireConfig{
		QueueBytes: d.QueueBytes, MaxQueueBytes: d.MaxQueueBytes, SendBuffer: d.SendBuffer,
		SlowTimeout: d.SlowTimeout, HandshakeTimeout: d.HandshakeTimeout,
		MaxPending: d.MaxPending, MaxPendingPerIP: d.MaxPendingPerIP,
		MaxPeers: d.MaxPeers, MaxConnsPerIP: d.MaxConnsPerIP,
		MaxSubscriptions: d.MaxSubscriptions, MaxSubscriptionBytes: d.MaxSubscriptionBytes,
		SubscriptionBudget: d.SubscriptionBudget,
	}
}

// Floors of PubWireConfig; zero still means the default. Below them a
// busy host's ordinary scheduling delays would cut subscribers that keep
// up.
const (
	// MinSlowTimeout is the smallest PubWireConfig.SlowTimeout.
	MinSlowTimeout = 100 * time.Millisecond
	// MinQueueBytes is the smallest PubWireConfig.QueueBytes and
	// MaxQueueBytes.
	MinQueueBytes = 1 << 10
	// MinSubscriptionBytes is the smallest
	// PubWireConfig.MaxSubscriptionBytes: what the largest prefix a
	// subscription frame carries takes.
	MinSubscriptionBytes = 4096 + 32
)

// Validate reports every problem of c: negative values, timeouts and
// queues below their floors, a MaxQueueBytes below QueueBytes, a
// MaxPending below MaxPendingPerIP, a SubscriptionBudget below
// MaxSubscriptionBytes.
func (c PubWireConfig) Validate() error {
	return renamed(c.internal().Validate(), "PubConfig.", "PubWireConfig.")
}

// internal maps c onto the transport's configuration; the publisher adds
// TLS, Allow, Evictable and the Logger.
func (c PubWireConfig) internal() wire.PubConfig {
	w := wire.PubConfig{
		QueueBytes: c.QueueBytes, MaxQueueBytes: c.MaxQueueBytes, SendBuffer: c.SendBuffer,
		SlowTimeout: c.SlowTimeout, HandshakeTimeout: c.HandshakeTimeout,
		MaxPending: c.MaxPending, MaxPendingPerIP: c.MaxPendingPerIP,
		MaxPeers: c.MaxPeers, MaxConnsPerIP: c.MaxConnsPerIP,
		MaxSubscriptions: c.MaxSubscriptions, MaxSubscriptionBytes: c.MaxSubscriptionBytes,
		SubscriptionBudget: c.SubscriptionBudget,
	}
	if on := c.OnEvent; on != nil {
		w.OnEvent = func(ev wire.PeerEvent) { on(peerEventOf(ev)) }
	}
	return w
}

// SubWireConfig tunes a subscriber's data (SUB) connections. Zero fields
// take the defaults.
type SubWireConfig struct {
	// ReconnectMin is the first wait after a failed dial or a lost
	// connection; it doubles up to ReconnectMax. Defaults 50 ms and 2 s;
	// at least MinReconnect. A subscriber never gives up on a publisher
	// it joined; SubscriberConfig.ConnectTimeout bounds the wait for the
	// first.
	ReconnectMin, ReconnectMax time.Duration
	// HandshakeTimeout bounds dial plus ZMTP handshake (plus TLS on
	// tls://). Default 2 s; at least MinHandshakeTimeout.
	HandshakeTimeout time.Duration
	// RecvQueue is how many received batches wait for the subscriber's
	// goroutine before the connections stop reading (and TCP pushes back
	// on the publisher). Default 1024.
	RecvQueue int
	// MaxFrame bounds a received frame in bytes. Default 64 MiB.
	MaxFrame int
	// IdleTimeout drops a connection on which nothing arrived for this
	// long, and reconnects: it finds half-open connections long before
	// TCP keepalive would. It must exceed the publisher's heartbeat
	// interval. Zero means DefaultIdleTimeout; negative disables it;
	// otherwise at least MinIdleTimeout.
	IdleTimeout time.Duration
}

// Floors of SubWireConfig's durations; zero still means the default.
// Reconnecting faster than MinReconnect only spins, and an IdleTimeout
// below MinIdleTimeout drops healthy connections between two heartbeats.
const (
	MinReconnect   = time.Millisecond
	MinIdleTimeout = 100 * time.Millisecond
)

// Validate reports every problem of c: negative values (but
// IdleTimeout's) and durations below their floors.
func (c SubWireConfig) Validate() error {
	return renamed(c.internal().Validate(), "SubConfig.", "SubWireConfig.")
}

// renamed names the fields of the transport's errors as this package
// does, one error per problem.
func renamed(err error, from, to string) error {
	if err == nil {
		return nil
	}
	var errs []error
	for _, line := range strings.Split(err.Error(), "\n") {
		errs = append(errs, errors.New(strings.Replace(line, from, to, 1)))
	}
	return errors.Join(errs...)
}

// internal maps c onto the transport's configuration, a negative
// IdleTimeout onto its "off"; the subscriber adds TLS, Borrow and the
// Logger.
func (c SubWireConfig) internal() wire.SubConfig {
	w := wire.SubConfig{
		ReconnectMin: c.ReconnectMin, ReconnectMax: c.ReconnectMax,
		HandshakeTimeout: c.HandshakeTimeout, RecvQueue: c.RecvQueue,
		MaxFrame: c.MaxFrame, IdleTimeout: c.IdleTimeout,
	}
	if w.IdleTimeout < 0 {
		w.IdleTimeout = 0
	}
	return w
}

// PeerEventType says what happened to a publisher's data connection.
type PeerEventType int

// Peer event types. For each connection the events come in this order:
// PeerConnected once, then PeerSubscribed for each prefix it adds, then,
// if it was cut as a slow consumer, PeerSlow, and last PeerDisconnected
// once. Events of different connections interleave.
const (
	PeerConnected PeerEventType = iota + 1
	// PeerDisconnected: the connection ended (PeerEvent.Err says why).
	PeerDisconnected
	// PeerSlow is reported just before a slow consumer's PeerDisconnected.
	PeerSlow
	// PeerSubscribed: the connection added a subscription prefix
	// (PeerEvent.Prefix); repeating a prefix it has is not reported.
	PeerSubscribed
)

func (t PeerEventType) String() string { return wire.PeerEventType(t).String() }

// PeerEvent reports a change of one data connection of a publisher.
type PeerEvent struct {
	Type PeerEventType
	// Conn identifies the connection among the publisher's connections.
	Conn uint64
	// Remote is the peer's address.
	Remote string
	// Identity is the peer's identity on a tls:// endpoint: CertIdentity
	// of the client certificate its TLS handshake verified. "" on tcp://.
	Identity string
	// Prefix (PeerSubscribed) is the prefix added; the event owns it.
	Prefix []byte
	// Dropped (PeerSlow, PeerDisconnected) counts the messages addressed
	// to the connection that did not reach its kernel buffer.
	Dropped int
	// Err (PeerSlow, PeerDisconnected) is why the connection ended: nil
	// for an orderly hang-up, else a slow consumer, an eviction, too many
	// subscriptions, the publisher closing, or an I/O or protocol error.
	Err error
}

func peerEventOf(ev wire.PeerEvent) PeerEvent {
	return PeerEvent{Type: PeerEventType(ev.Type), Conn: uint64(ev.Conn), Remote: ev.Remote,
		Identity: ev.Identity, Prefix: ev.Prefix, Dropped: ev.Dropped, Err: ev.Err}
}
