package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/internal/ratelog"
	"go.uber.org/zap"
)

// SubConfig configures a Sub. Zero fields take the defaults shown.
type SubConfig struct {
	// ReconnectMin is the first wait after a failed dial or a lost
	// connection; it doubles up to ReconnectMax. Defaults 50 ms and 2 s;
	// at least MinReconnect. A Sub never gives up on an endpoint until
	// Disconnect or Close.
	ReconnectMin, ReconnectMax time.Duration
	// HandshakeTimeout bounds dial plus ZMTP handshake. Default 2 s; at
	// least MinHandshakeTimeout.
	HandshakeTimeout time.Duration
	// RecvQueue is how many deliveries wait for Recv before the readers
	// stop reading (and TCP pushes back on the publisher). Default 1024.
	RecvQueue int
	// MaxFrame bounds a received frame in bytes. Default 64 MiB.
	MaxFrame int
	// IdleTimeout drops a connection on which nothing arrived for this
	// long, and reconnects. It finds half-open connections (the publisher's
	// host died, or a partition made the publisher drop this subscriber)
	// long before TCP keepalive would. It must exceed the publisher's
	// heartbeat interval. Zero disables it; otherwise at least
	// MinIdleTimeout.
	IdleTimeout time.Duration
	// Security is the ZMTP security mechanism; nil means NULL.
	Security zmq4.Security
	// TLS is this side's certificate and the CA pool that verifies
	// publishers, for tls:// endpoints, which require it; tcp:// endpoints
	// do not use it.
	TLS *TLS
	// Logger receives debug lines about connections, and a warning when
	// a TLS handshake fails (at most one per 10 s); nil means none.
	Logger *zap.Logger
	// Borrow makes the Sub lend its read buffers instead of copying each
	// frame out of them: messages arrive as Messages deliveries, each with
	// every complete message one read brought (Delivery.Msgs), whose
	// frames alias the connection's read buffer until the consumer calls
	// Delivery.Release. A connection lends at most 4 buffers of 256 KiB
	// (a larger message gets one of its own); while the consumer holds all
	// of them, it stops reading. Without Borrow, each message is a Message
	// delivery with frames of its own.
	Borrow bool
}

// Floors of a SubConfig's durations (zero still means the default):
// reconnecting faster than MinReconnect only spins, and an IdleTimeout
// below MinIdleTimeout drops healthy connections between two heartbeats.
const (
	MinReconnect   = time.Millisecond
	MinIdleTimeout = 100 * time.Millisecond
)

// Validate reports every problem of c: negative values and durations
// below their floors. NewSub does not check it; the layers that build a
// SubConfig from user input do.
func (c SubConfig) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"ReconnectMin", int64(c.ReconnectMin)}, {"ReconnectMax", int64(c.ReconnectMax)},
		{"HandshakeTimeout", int64(c.HandshakeTimeout)}, {"RecvQueue", int64(c.RecvQueue)}, {"MaxFrame", int64(c.MaxFrame)},
		{"IdleTimeout", int64(c.IdleTimeout)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("wire: SubConfig.%s is negative", f.name))
		}
	}
	errs = append(errs, floor("SubConfig.ReconnectMin", c.ReconnectMin, MinReconnect),
		floor("SubConfig.ReconnectMax", c.ReconnectMax, MinReconnect),
		floor("SubConfig.HandshakeTimeout", c.HandshakeTimeout, MinHandshakeTimeout),
		floor("SubConfig.IdleTimeout", c.IdleTimeout, MinIdleTimeout))
	return errors.Join(errs...)
}

func (c SubConfig) withDefaults() SubConfig {
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = 50 * time.Millisecond
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = 2 * time.Second
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.RecvQueue <= 0 {
		c.RecvQueue = 1024
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// DeliveryKind says what a Delivery carries.
type DeliveryKind int

// Delivery kinds. Connection changes travel in the same stream as the
// messages, so a consumer sees them in the order they happened.
const (
	// Message: Frames holds a message received from Endpoint.
	Message DeliveryKind = iota
	// Connected: a connection to Endpoint completed its handshake and the
	// subscriptions were sent.
	Connected
	// Disconnected: the connection to Endpoint was lost (Err says why); the
	// Sub is already reconnecting.
	Disconnected
	// Messages (SubConfig.Borrow): Msgs holds one or more messages received
	// from Endpoint, valid until Release.
	Messages
)

// Delivery is one item of a Sub's receive stream.
type Delivery struct {
	Kind     DeliveryKind
	Endpoint string
	Frames   [][]byte
	Err      error
	// Behind (Disconnected only) says the consumer had let the receive
	// queue fill shortly before: the publisher likely dropped it as a
	// slow consumer.
	Behind bool
	// Msgs holds the messages of a Messages delivery.
	Msgs *Bundle
	// InProcess (Messages only) says the frames are the publishing Pub's
	// own memory, lent over an inproc:// connection: no byte of them
	// crossed a socket, a pipe or a copy, so nothing between the Pub and
	// this consumer could have altered them. A checksum that guards
	// against corruption in transit has nothing to catch here.
	InProcess bool
	buf       *readBuf
}

// Sub is a ZeroMQ SUB socket that dials any number of endpoints, each with
// its own supervised connection. All methods are safe for concurrent use;
// Recv is meant for one consumer goroutine.
type Sub struct {
	cfg    SubConfig
	rl     *ratelog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	g      gogroup.Group
	out    chan Delivery

	behindAt atomic.Int64 // Unix ns when a delivery last found the queue full

	mu    sync.Mutex
	subs  []string
	conns map[string]*subConn
}

type subConn struct {
	cancel context.CancelFunc
	wmu    sync.Mutex
	nc     net.Conn // nil while not connected
}

// NewSub returns a Sub subscribed to prefixes (none: nothing; "" matches every topic).
func NewSub(cfg SubConfig, prefixes ...string) *Sub {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Sub{
		cfg:    cfg,
		rl:     ratelog.New(cfg.Logger, 0),
		ctx:    ctx,
		cancel: cancel,
		out:    make(chan Delivery, cfg.RecvQueue),
		subs:   append([]string(nil), prefixes...),
		conns:  make(map[string]*subConn),
	}
}

// Subscribe adds a prefix on every current and future connection.
func (s *Sub) Subscribe(prefix string) {
	s.mu.Lock()
	s.subs = append(s.subs, prefix)
	conns := make([]*subConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.sendSubs([]string{prefix}, s.cfg.HandshakeTimeout)
	}
}

// Connect starts a supervised connection to endpoint. It returns at once;
// the Connected delivery says when the connection is up. Connecting twice
// to one endpoint is a no-op.
func (s *Sub) Connect(endpoint string) error {
	tg, err := newTarget(endpoint, s.cfg.TLS)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	if _, ok := s.conns[endpoint]; ok {
		return nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c := &subConn{cancel: cancel}
	s.conns[endpoint] = c
	s.g.Go(func() { s.supervise(ctx, c, endpoint, tg) })
	return nil
}

// Disconnect stops the connection to endpoint and its reconnects.
func (s *Sub) Disconnect(endpoint string) {
	s.mu.Lock()
	c, ok := s.conns[endpoint]
	delete(s.conns, endpoint)
	s.mu.Unlock()
	if ok {
		c.cancel()
	}
}

// Recv returns the next delivery. It blocks until one arrives, ctx is done
// (ctx.Err()) or the Sub is closed (ErrClosed).
func (s *Sub) Recv(ctx context.Context) (Delivery, error) {
	select {
	case d := <-s.out:
		return d, nil
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	case <-s.ctx.Done():
		return Delivery{}, ErrClosed
	}
}

// Deliveries returns the receive stream, for consumers that select over
// several channels. It is never closed; stop reading when Close is called.
func (s *Sub) Deliveries() <-chan Delivery { return s.out }

// Close stops every connection and waits for their goroutines. Idempotent.
func (s *Sub) Close() error {
	s.mu.Lock()
	s.cancel()
	s.g.Stop()
	s.mu.Unlock()
	s.g.Wait()
	return nil
}

func (s *Sub) supervise(ctx context.Context, c *subConn, endpoint string, tg target) {
	backoff := s.cfg.ReconnectMin
	var failingSince time.Time // when the current run of failed dials began
	var warned time.Time
	for ctx.Err() == nil {
		err := s.session(ctx, c, endpoint, tg)
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, ErrTLS), errors.Is(err, errBadHandshake):
			// Retrying will not fix a refused certificate or a scheme
			// that does not match the endpoint's: say so, but not at
			// every attempt.
			s.rl.Warn("handshake", "handshake with the publisher failed; retrying", zap.String("endpoint", endpoint), zap.Error(err))
		case err != nil && !errors.Is(err, errSessionEnded):
			s.cfg.Logger.Debug("connection failed", zap.String("endpoint", endpoint), zap.Error(err), zap.Duration("retry_in", backoff))
			// An endpoint that cannot be resolved or reached is said at warn
			// level after a few seconds, and again now and then, not only
			// at debug: the subscriber would otherwise wait in silence.
			now := time.Now()
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(failingSince) >= unreachableAfter && now.Sub(warned) >= unreachableEvery {
				warned = now
				s.cfg.Logger.Warn("cannot reach publisher; still trying", zap.String("endpoint", endpoint),
					zap.Duration("for", now.Sub(failingSince).Round(time.Second)), zap.Error(err))
			}
		}
		if errors.Is(err, errSessionEnded) {
			backoff = s.cfg.ReconnectMin
			failingSince, warned = time.Time{}, time.Time{}
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.ReconnectMax)
	}
}

var errSessionEnded = errors.New("wire: connection lost")

// An endpoint that keeps failing is reported at warn level once it has
// failed for unreachableAfter, then every unreachableEvery.
const (
	unreachableAfter = 3 * time.Second
	unreachableEvery = 30 * time.Second
)

// session dials once and reads until the connection breaks.
func (s *Sub) session(ctx context.Context, c *subConn, endpoint string, tg target) error {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	raw, err := tg.dial(dctx, s.cfg.Borrow)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	defer raw.Close()
	nc, err := tg.secure(dctx, raw)
	if err != nil {
		return err
	}
	peerType, err := handshake(nc, zmq4.Sub, s.cfg.Security, false, s.cfg.HandshakeTimeout)
	if err == nil && !zmq4.Sub.IsCompatible(peerType) {
		err = fmt.Errorf("wire: SUB does not talk to %q", peerType)
	}
	if err != nil {
		if err = explainTLS(err); !errors.Is(err, ErrTLS) {
			err = fmt.Errorf("%w: %w", errBadHandshake, err)
		}
		return err
	}
	c.wmu.Lock()
	c.nc = nc
	c.wmu.Unlock()
	defer func() {
		c.wmu.Lock()
		c.nc = nil
		c.wmu.Unlock()
	}()
	s.mu.Lock()
	subs := append([]string(nil), s.subs...)
	s.mu.Unlock()
	if err := c.sendSubs(subs, s.cfg.HandshakeTimeout); err != nil {
		return err
	}
	if !s.deliver(ctx, Delivery{Kind: Connected, Endpoint: endpoint}) {
		return nil
	}
	if mc, ok := nc.(*memConn); ok && s.cfg.Borrow {
		return s.readBatches(ctx, mc, endpoint)
	}
	if s.cfg.Borrow {
		return s.readBorrowed(ctx, nc, endpoint)
	}
	fr := newFrameReader(nc, ioBufferSize, s.cfg.MaxFrame, DefaultMaxFrames)
	var deadline readDeadline
	for {
		if err := deadline.extend(nc, s.cfg.IdleTimeout); err != nil {
			return err
		}
		frames, info, err := fr.readMsg(make([][]byte, 0, 3))
		if err != nil {
			behind := time.Since(time.Unix(0, s.behindAt.Load())) < behindWindow
			s.deliver(ctx, Delivery{Kind: Disconnected, Endpoint: endpoint, Err: err, Behind: behind})
			return fmt.Errorf("%w: %v", errSessionEnded, err)
		}
		if info.cmd {
			continue // PUB sends no commands we act on
		}
		if !s.deliver(ctx, Delivery{Kind: Message, Endpoint: endpoint, Frames: frames}) {
			return nil
		}
	}
}

func (s *Sub) deliver(ctx context.Context, d Delivery) bool {
	select {
	case s.out <- d:
		return true
	default:
	}
	// The consumer is behind: remember it, so a disconnect that follows can
	// be told apart from a network fault (the publisher drops subscribers
	// that stop reading).
	s.behindAt.Store(time.Now().UnixNano())
	select {
	case s.out <- d:
		return true
	case <-ctx.Done():
		return false
	}
}

// behindWindow is how recently the consumer must have been behind for a
// disconnect to count as a slow-consumer one.
const behindWindow = 10 * time.Second

// sendSubs writes ZMTP 3.0 subscription messages (0x01 + prefix).
func (c *subConn) sendSubs(prefixes []string, timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.nc == nil {
		return nil // the next session sends every subscription
	}
	var buf []byte
	for _, p := range prefixes {
		body := append([]byte{1}, p...)
		if len(body) > 255 {
			buf = append(buf, flagLong, 0, 0, 0, 0, 0, 0, byte(len(body)>>8), byte(len(body)))
		} else {
			buf = append(buf, 0, byte(len(body)))
		}
		buf = append(buf, body...)
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(buf)
	return err
}

// readDeadline keeps a connection's read deadline IdleTimeout ahead.
// Pushing it forward on every message would cost a timer update each;
// every quarter of the timeout is enough.
type readDeadline struct{ set time.Time }

// extend pushes nc's read deadline to idle from now if a quarter of idle
// has passed since it last did; idle 0 means no deadline.
func (d *readDeadline) extend(nc net.Conn, idle time.Duration) error {
	if idle <= 0 {
		return nil
	}
	if now := time.Now(); now.Sub(d.set) > idle/4 {
		if err := nc.SetReadDeadline(now.Add(idle)); err != nil {
			return err
		}
		d.set = now
	}
	return nil
}
