package wire

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-zeromq/zmq4"
	"go.uber.org/zap"
)

// PubConfig configures a Pub. Zero fields take the defaults of
// DefaultPubConfig.
type PubConfig struct {
	// QueueBytes is the soft bound of each connection's queue, in bytes
	// (frame bytes plus 9 bytes of framing per frame): Send paces the
	// publisher to the fastest matching subscriber by waiting while every
	// matching connection has more than QueueBytes queued. A subscriber
	// slower than the others falls behind without slowing them, until the
	// Pub holds half of MaxQueueBytes: then a subscriber that is behind
	// and still reading slows Send to its pace (backpressure), while one
	// that stopped reading does not. Default 4 MiB; at least MinQueueBytes.
	QueueBytes int
	// MaxQueueBytes is the hard bound, in bytes. A connection whose queue
	// would exceed it is disconnected as a slow consumer. It also bounds
	// the Pub's total of queued bytes, each message counted once however
	// many connections hold it: when a Send takes the total above it, the
	// connection furthest behind is disconnected, provided it is more than
	// 2 × QueueBytes behind. A message larger than the bound is still
	// queued for a connection whose queue is empty. Default 64 MiB; at
	// least QueueBytes.
	MaxQueueBytes int
	// Pace says when Send waits for subscribers: PaceLagging (zero, the
	// rule QueueBytes describes), PaceNone or PaceSlowest.
	Pace Pace
	// BehindBytes, if positive, is the queue above which a connection is
	// reported by TakeBehind: the application may then stop sending it
	// the live stream (a class Send does not address) and feed it at its
	// own pace with Offer. Zero: never reported.
	BehindBytes int
	// OnWritable, if set, is called when a connection's queue falls to
	// WritableBytes or below from above it, so the application can Offer
	// it more. It is called from the connection's writer and must not
	// block.
	OnWritable func(ConnID)
	// WritableBytes is OnWritable's threshold; zero means QueueBytes / 2.
	WritableBytes int
	// SendBuffer sets each connection's kernel send buffer (SO_SNDBUF), in
	// bytes, on tcp://, tls:// and ipc://; Linux doubles it. Zero leaves it
	// to the OS, which grows a TCP buffer up to net.ipv4.tcp_wmem's
	// maximum (4 MiB by default) and keeps a Unix socket's at
	// net.core.wmem_default (208 KiB). What a stalled subscriber holds in
	// the kernel is not in its queue: until that buffer is full, its queue
	// stays empty and it paces Send as if it were fast.
	SendBuffer int
	// SlowTimeout is how long a write of at most 64 KiB to a subscriber
	// may take; a subscriber that does not take that much within it is
	// disconnected as a slow consumer. It does not apply while Shutdown
	// flushes to a subscriber it waits for (Shutdown's ctx bounds that),
	// nor to a connection the application feeds with Offer, until a live
	// Send queues for it again.
	// Default 500 ms; at least MinSlowTimeout.
	SlowTimeout time.Duration
	// HandshakeTimeout bounds a new connection's ZMTP handshake (and its
	// TLS handshake on tls://). Default 2 s; at least MinHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxPending bounds the connections still in their handshake (TLS and
	// ZMTP), all addresses together. A new connection is never refused
	// for it: at the bound, the oldest handshake of the address holding
	// the most is closed to make room (PubStats.EvictedPending). Default
	// 256; at least MaxPendingPerIP.
	MaxPending int
	// MaxPendingPerIP bounds the handshakes in progress from one source
	// IP address: a new connection from an address that has as many
	// closes that address's oldest handshake. So half-open connections
	// from one address, however fast renewed, only ever evict their own.
	// Default 64: an honest host's burst of connections handshakes in
	// well under a millisecond each.
	MaxPendingPerIP int
	// MaxPeers bounds connected subscribers; more are closed after their
	// handshake, unless Evictable lets one go. Default 4096.
	MaxPeers int
	// MaxConnsPerIP bounds the connections (handshaking or connected) from
	// one source IP address; more are closed at once, unless Evictable
	// lets one of that address go. Default 256.
	MaxConnsPerIP int
	// Evictable, if set, makes room at MaxConnsPerIP and MaxPeers: a new
	// connection then closes the connected subscriber (of its address, for
	// MaxConnsPerIP) that connected first among those for which Evictable
	// returns true, and is refused only if there is none. The application
	// says which connections it can spare, e.g. those that have not proved
	// who they are. The closed connection's PeerDisconnected carries
	// ErrEvicted; it is counted in PubStats.Evicted. Connections still in
	// their handshake are never evicted (HandshakeTimeout bounds them).
	// Called from the Pub's goroutines without its locks; must not block.
	// Nil: never evict.
	Evictable func(ConnID) bool
	// MaxSubscriptions bounds the distinct prefixes one connection may
	// subscribe; the connection that subscribes one more is closed.
	// Default 1024.
	MaxSubscriptions int
	// MaxSubscriptionBytes bounds the memory one connection's
	// subscriptions take, in bytes: each prefix counts its length plus
	// SubscriptionOverhead. The connection that subscribes beyond it is
	// closed (ErrTooManySubscriptions, counted in TooManySubscriptions).
	// Default 64 KiB, room for 1024 prefixes of 32 bytes; at least
	// MinSubscriptionBytes, what the largest prefix a subscription frame
	// carries takes.
	MaxSubscriptionBytes int
	// SubscriptionBudget bounds the memory the subscriptions of all
	// connections take together, counted as for MaxSubscriptionBytes.
	// The subscription that takes the total above it closes the
	// connection that holds the most subscription bytes among those
	// Evictable lets go (those that have not joined, in coord), or the
	// subscribing connection if there is none; the closed connection's
	// PeerDisconnected carries ErrTooManySubscriptions, and it is counted
	// in PubStats.SubscriptionEvicted. So connections that subscribe
	// without joining cannot keep a subscriber out, and the memory stays
	// bounded however many connect. Default 16 MiB; at least
	// MaxSubscriptionBytes.
	SubscriptionBudget int
	// Security is the ZMTP security mechanism; nil means NULL. zmq4's
	// PLAIN server accepts any username and password: it authenticates
	// nobody. Use a tls:// endpoint with TLS for that.
	Security zmq4.Security
	// TLS is the certificate and CA pool of a tls:// endpoint, which
	// requires it; a tcp:// endpoint must leave it nil.
	TLS *TLS
	// Allow, if set, decides whether a peer of this identity may
	// subscribe: on tls:// during the TLS handshake, from CertIdentity of
	// the verified certificate (a refused client gets a bad_certificate
	// alert), on tcp:// after the ZMTP handshake, with identity "". A
	// refused connection is closed before PeerConnected, counted in
	// PubStats.RefusedIdentity and logged. It is called from the
	// connection's goroutine and must not block.
	Allow func(identity string) bool
	// OnEvent, if set, is called for connects, subscriptions, disconnects
	// and slow consumers (see PeerEvent for their order). It is called from
	// the Pub's goroutines and must not block.
	OnEvent func(PeerEvent)
	// Logger receives warnings about refused and misbehaving connections,
	// at most one line per reason per 10 s, and debug lines about
	// disconnections; nil means none.
	Logger *zap.Logger
}

// SubscriptionOverhead is what a subscription costs beside its prefix's
// bytes, for MaxSubscriptionBytes and SubscriptionBudget: about what the
// set that holds it spends per entry.
const SubscriptionOverhead = 32

// MinSubscriptionBytes is the least MaxSubscriptionBytes: the largest
// prefix a subscription frame can carry, with its overhead.
const MinSubscriptionBytes = peerMaxFrame + SubscriptionOverhead

// DefaultPubConfig returns the configuration zero fields default to.
func DefaultPubConfig() PubConfig {
	return PubConfig{
		QueueBytes:       4 << 20,
		MaxQueueBytes:    64 << 20,
		SlowTimeout:      500 * time.Millisecond,
		HandshakeTimeout: DefaultHandshakeTimeout,
		MaxPending:       256,
		MaxPendingPerIP:  64,
		MaxPeers:         4096,
		MaxConnsPerIP:    256,
		MaxSubscriptions: 1024,

		MaxSubscriptionBytes: 64 << 10,
		SubscriptionBudget:   16 << 20,
	}
}

func (c PubConfig) withDefaults() PubConfig {
	d := DefaultPubConfig()
	if c.QueueBytes <= 0 {
		c.QueueBytes = d.QueueBytes
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = max(d.MaxQueueBytes, c.QueueBytes)
	}
	if c.SlowTimeout <= 0 {
		c.SlowTimeout = d.SlowTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.MaxPendingPerIP <= 0 {
		c.MaxPendingPerIP = d.MaxPendingPerIP
	}
	if c.MaxPending <= 0 {
		c.MaxPending = max(d.MaxPending, c.MaxPendingPerIP)
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = d.MaxPeers
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = d.MaxConnsPerIP
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = d.MaxSubscriptions
	}
	if c.MaxSubscriptionBytes <= 0 {
		c.MaxSubscriptionBytes = d.MaxSubscriptionBytes
	}
	if c.SubscriptionBudget <= 0 {
		c.SubscriptionBudget = max(d.SubscriptionBudget, c.MaxSubscriptionBytes)
	}
	if c.WritableBytes <= 0 {
		c.WritableBytes = c.QueueBytes / 2
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Pace is when Send waits for subscribers.
type Pace uint8

const (
	// PaceLagging: Send waits while every matching connection has more
	// than QueueBytes queued, and, while the Pub holds more than half of
	// MaxQueueBytes, while a subscriber that is behind still reads (see
	// PubConfig.QueueBytes).
	PaceLagging Pace = iota
	// PaceFastest: Send waits while every matching connection has more
	// than QueueBytes queued, and for nothing else: the publisher goes at
	// the pace of the fastest subscriber. One that falls behind the others
	// is cut at MaxQueueBytes, unless the application moved it off the
	// live stream first (BehindBytes).
	PaceFastest
	// PaceSlowest: Send waits while any matching connection has more than
	// QueueBytes queued, among those Evictable does not let go: the
	// slowest subscriber sets everyone's pace. One that stops reading is
	// cut by SlowTimeout.
	PaceSlowest
)

// Floors of the timeouts and queues a configuration may set; zero still
// means the default. Below them a Pub would not misbehave in its own
// terms, but ordinary scheduling delays on a busy host would cut
// subscribers that keep up, or fail handshakes that are merely slow.
const (
	// MinSlowTimeout is the smallest PubConfig.SlowTimeout.
	MinSlowTimeout = 100 * time.Millisecond
	// MinHandshakeTimeout is the smallest handshake timeout of a Pub, a
	// Server or a Sub.
	MinHandshakeTimeout = 100 * time.Millisecond
	// MinQueueBytes is the smallest PubConfig.QueueBytes and MaxQueueBytes.
	MinQueueBytes = 1 << 10
)

// Validate reports every problem of a configuration Listen would refuse:
// negative values, timeouts and queues below their floors, a
// MaxQueueBytes below QueueBytes, a MaxPending below MaxPendingPerIP, a
// MaxSubscriptionBytes below MinSubscriptionBytes and a
// SubscriptionBudget below MaxSubscriptionBytes.
func (c PubConfig) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"QueueBytes", int64(c.QueueBytes)}, {"MaxQueueBytes", int64(c.MaxQueueBytes)}, {"SendBuffer", int64(c.SendBuffer)},
		{"SlowTimeout", int64(c.SlowTimeout)}, {"HandshakeTimeout", int64(c.HandshakeTimeout)},
		{"MaxPending", int64(c.MaxPending)}, {"MaxPendingPerIP", int64(c.MaxPendingPerIP)}, {"MaxPeers", int64(c.MaxPeers)},
		{"MaxConnsPerIP", int64(c.MaxConnsPerIP)}, {"MaxSubscriptions", int64(c.MaxSubscriptions)},
		{"MaxSubscriptionBytes", int64(c.MaxSubscriptionBytes)}, {"SubscriptionBudget", int64(c.SubscriptionBudget)},
		{"BehindBytes", int64(c.BehindBytes)}, {"WritableBytes", int64(c.WritableBytes)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("wire: PubConfig.%s is negative", f.name))
		}
	}
	errs = append(errs, floor("PubConfig.SlowTimeout", c.SlowTimeout, MinSlowTimeout),
		floor("PubConfig.HandshakeTimeout", c.HandshakeTimeout, MinHandshakeTimeout))
	for _, f := range []struct {
		name string
		v    int
	}{{"QueueBytes", c.QueueBytes}, {"MaxQueueBytes", c.MaxQueueBytes}} {
		if f.v > 0 && f.v < MinQueueBytes {
			errs = append(errs, fmt.Errorf("wire: PubConfig.%s %d is below %d bytes", f.name, f.v, MinQueueBytes))
		}
	}
	if c.Pace > PaceSlowest {
		errs = append(errs, fmt.Errorf("wire: PubConfig.Pace %d is not a Pace", c.Pace))
	}
	d := c.withDefaults()
	if d.MaxQueueBytes < d.QueueBytes {
		errs = append(errs, fmt.Errorf("wire: PubConfig.MaxQueueBytes %d is below QueueBytes %d", d.MaxQueueBytes, d.QueueBytes))
	}
	if c.MaxSubscriptionBytes > 0 && c.MaxSubscriptionBytes < MinSubscriptionBytes {
		errs = append(errs, fmt.Errorf("wire: PubConfig.MaxSubscriptionBytes %d is below %d, what the largest prefix takes", c.MaxSubscriptionBytes, MinSubscriptionBytes))
	}
	if d.SubscriptionBudget < d.MaxSubscriptionBytes {
		errs = append(errs, fmt.Errorf("wire: PubConfig.SubscriptionBudget %d is below MaxSubscriptionBytes %d", d.SubscriptionBudget, d.MaxSubscriptionBytes))
	}
	if d.MaxPending < d.MaxPendingPerIP {
		errs = append(errs, fmt.Errorf("wire: PubConfig.MaxPending %d is below MaxPendingPerIP %d", d.MaxPending, d.MaxPendingPerIP))
	}
	return errors.Join(errs...)
}

// floor returns an error when d is set (positive) and below min; zero
// means a default, and negative values are reported elsewhere.
func floor(name string, d, least time.Duration) error {
	if d > 0 && d < least {
		return fmt.Errorf("wire: %s %v is below %v", name, d, least)
	}
	return nil
}
