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
	"go.uber.org/zap"
)

// PubConfig configures a Pub. Zero fields take the defaults shown.
type PubConfig struct {
	// QueueBytes bounds each subscriber's queue (frame bytes plus 9 bytes of
	// framing per frame). A message larger than the bound is still queued
	// when the queue is empty. Default 4 MiB.
	QueueBytes int
	// SlowTimeout is how long a subscriber may keep its queue full, or a
	// write blocked, before it is disconnected as a slow consumer. While
	// Send waits for it, it waits for no other subscriber. Default 500 ms.
	SlowTimeout time.Duration
	// HandshakeTimeout bounds a new connection's ZMTP handshake. Default 2 s.
	HandshakeTimeout time.Duration
	// MaxPending bounds connections that are still handshaking; more are
	// closed at once. Default 256.
	MaxPending int
	// MaxPeers bounds connected subscribers; more are refused. Default 4096.
	MaxPeers int
	// Security is the ZMTP security mechanism; nil means NULL.
	Security zmq4.Security
	// OnEvent, if set, is called for connects, disconnects and slow
	// consumers. It is called from the Pub's goroutines and must not block.
	OnEvent func(PeerEvent)
	// Logger receives debug lines about connections; nil means none.
	Logger *zap.Logger
}

func (c PubConfig) withDefaults() PubConfig {
	if c.QueueBytes <= 0 {
		c.QueueBytes = 4 << 20
	}
	if c.SlowTimeout <= 0 {
		c.SlowTimeout = 500 * time.Millisecond
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 256
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = 4096
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// PeerEventType says what happened to a connection.
type PeerEventType int

// Peer event types.
const (
	PeerConnected PeerEventType = iota + 1
	PeerDisconnected
	// PeerSlow is reported just before a slow consumer is disconnected.
	PeerSlow
)

func (t PeerEventType) String() string {
	switch t {
	case PeerConnected:
		return "connected"
	case PeerDisconnected:
		return "disconnected"
	case PeerSlow:
		return "slow-consumer"
	}
	return "unknown"
}

// PeerEvent reports a change of one connection.
type PeerEvent struct {
	Type   PeerEventType
	Remote string
	// Dropped (PeerSlow, PeerDisconnected) counts the messages addressed to
	// the connection that did not reach its kernel buffer: its queue, the
	// unwritten part of the batch being written, and a message Send was
	// waiting to queue.
	Dropped int
	Err     error
}

// PubStats is a snapshot of a Pub's counters.
type PubStats struct {
	Peers           int
	Sent            uint64 // messages addressed to subscribers (queued, or dropped for a slow one), summed over subscribers
	SlowConsumers   uint64 // subscribers disconnected for being slow
	Dropped         uint64 // messages addressed to slow consumers that never reached their kernel buffers
	HandshakeFailed uint64 // connections that failed or timed out in handshake
	Refused         uint64 // connections closed because of MaxPending or MaxPeers
	Waits           uint64 // Sends that found a full queue and had to wait
}

// Pub is a ZeroMQ PUB socket that binds one TCP endpoint. Send must be
// called from one goroutine at a time; every other method is safe for
// concurrent use.
type Pub struct {
	cfg     PubConfig
	ln      net.Listener
	g       gogroup.Group
	pending chan struct{}

	mu      sync.Mutex
	peers   map[*peer]struct{}
	shaking map[net.Conn]struct{}   // connections still in handshake, closed by Close
	snap    atomic.Pointer[[]*peer] // copy-on-write view for Send

	closeOnce sync.Once
	closed    chan struct{}
	timer     *time.Timer

	sent, slow, dropped, hsFailed, refused, waits atomic.Uint64
}

// Listen binds endpoint ("tcp://*:5561", "tcp://127.0.0.1:0") and starts
// accepting subscribers.
func Listen(endpoint string, cfg PubConfig) (*Pub, error) {
	addr, err := SplitEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wire: listen %s: %w", endpoint, err)
	}
	cfg = cfg.withDefaults()
	p := &Pub{
		cfg:     cfg,
		ln:      ln,
		pending: make(chan struct{}, cfg.MaxPending),
		peers:   make(map[*peer]struct{}),
		shaking: make(map[net.Conn]struct{}),
		closed:  make(chan struct{}),
		timer:   time.NewTimer(time.Hour),
	}
	p.timer.Stop()
	empty := []*peer{}
	p.snap.Store(&empty)
	p.g.Go(p.acceptLoop)
	return p, nil
}

// Addr returns the bound address, with the port the OS chose.
func (p *Pub) Addr() net.Addr { return p.ln.Addr() }

// Endpoint returns "tcp://host:port" for the bound address, for dialing.
func (p *Pub) Endpoint() string { return "tcp://" + p.ln.Addr().String() }

func (p *Pub) acceptLoop() { acceptLoop(p.ln, p.closed, p.admit) }

// admit starts the handshake of a new connection, or refuses it when
// MaxPending handshakes are already running.
func (p *Pub) admit(nc net.Conn) bool {
	select {
	case p.pending <- struct{}{}:
	default:
		p.refused.Add(1)
		nc.Close()
		return true
	}
	p.mu.Lock()
	p.shaking[nc] = struct{}{}
	p.mu.Unlock()
	if !p.g.Go(func() { p.open(nc) }) {
		nc.Close()
		return false
	}
	return true
}

// open handshakes a new connection off the accept loop and registers it.
func (p *Pub) open(nc net.Conn) {
	peerType, err := handshake(nc, zmq4.Pub, p.cfg.Security, true, p.cfg.HandshakeTimeout)
	<-p.pending
	p.mu.Lock()
	delete(p.shaking, nc)
	p.mu.Unlock()
	if err == nil && !zmq4.Pub.IsCompatible(peerType) {
		err = fmt.Errorf("wire: PUB does not talk to %q", peerType)
	}
	if err != nil {
		p.hsFailed.Add(1)
		p.cfg.Logger.Debug("handshake failed", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
		nc.Close()
		return
	}
	pr := newPeer(p, nc)
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		nc.Close()
		return
	default:
	}
	if len(p.peers) >= p.cfg.MaxPeers {
		p.mu.Unlock()
		p.refused.Add(1)
		nc.Close()
		return
	}
	p.peers[pr] = struct{}{}
	p.publishSnapLocked()
	// Start both goroutines under the lock so Close, which takes it, sees them.
	p.g.Go(pr.writeLoop)
	p.g.Go(pr.readLoop)
	p.mu.Unlock()
	p.emit(PeerEvent{Type: PeerConnected, Remote: pr.remote})
	pr.done() // the peer's disconnection may be reported from now on
}

func (p *Pub) publishSnapLocked() {
	s := make([]*peer, 0, len(p.peers))
	for pr := range p.peers {
		s = append(s, pr)
	}
	p.snap.Store(&s)
}

// remove takes pr out of the set Send delivers to.
func (p *Pub) remove(pr *peer) {
	p.mu.Lock()
	if _, ok := p.peers[pr]; ok {
		delete(p.peers, pr)
		p.publishSnapLocked()
	}
	p.mu.Unlock()
}

func (p *Pub) emit(ev PeerEvent) {
	if p.cfg.OnEvent != nil {
		p.cfg.OnEvent(ev)
	}
}

// Send queues m for every subscriber whose subscription matches frame 0.
// It returns as soon as every matching queue accepted it; a full queue
// makes it wait up to SlowTimeout, after which that subscriber is dropped
// as a slow consumer. The Pub keeps m until every connection wrote it (see
// Msg). Send returns ctx.Err() or ErrClosed; it reports no per-subscriber
// failure, those arrive as PeerEvents.
func (p *Pub) Send(ctx context.Context, m *Msg) error {
	select {
	case <-p.closed:
		return ErrClosed
	default:
	}
	m.refs.Store(1)
	defer m.release()
	var topic []byte
	if len(m.Frames) > 0 {
		topic = m.Frames[0]
	}
	size := m.size()
	for _, pr := range *p.snap.Load() {
		if !pr.subscribed(topic) {
			continue
		}
		switch pr.q.push(m, size, p.cfg.QueueBytes) {
		case pushed:
			p.sent.Add(1)
		case pushFull:
			p.waits.Add(1)
			if err := p.sendSlow(ctx, pr, m, size); err != nil {
				return err
			}
		case pushGone:
			// Disconnecting or draining: the subscriber is as good as gone.
		}
	}
	return nil
}

// sendSlow waits for room in pr's queue, up to SlowTimeout. A message it
// gives up on because the subscriber died counts as sent to it, and the
// subscriber's report counts it as dropped (see sendQueue.waiting).
func (p *Pub) sendSlow(ctx context.Context, pr *peer, m *Msg, size int) error {
	p.timer.Reset(p.cfg.SlowTimeout)
	defer p.timer.Stop()
	for {
		select {
		case <-pr.q.space:
			switch pr.q.push(m, size, p.cfg.QueueBytes) {
			case pushed, pushGone:
				p.sent.Add(1)
				return nil
			}
		case <-pr.gone:
			p.sent.Add(1)
			return nil
		case <-p.timer.C:
			pr.kill(errSlowConsumer)
			p.sent.Add(1)
			return nil
		case <-ctx.Done():
			if !pr.q.stopWaiting() {
				p.sent.Add(1)
			}
			return ctx.Err()
		case <-p.closed:
			if !pr.q.stopWaiting() {
				p.sent.Add(1)
			}
			return ErrClosed
		}
	}
}

var errSlowConsumer = errors.New("wire: slow consumer")

// Peers returns the number of connected subscribers.
func (p *Pub) Peers() int { return len(*p.snap.Load()) }

// Stats returns a snapshot of the counters.
func (p *Pub) Stats() PubStats {
	return PubStats{
		Peers:           p.Peers(),
		Sent:            p.sent.Load(),
		SlowConsumers:   p.slow.Load(),
		Dropped:         p.dropped.Load(),
		HandshakeFailed: p.hsFailed.Load(),
		Refused:         p.refused.Load(),
		Waits:           p.waits.Load(),
	}
}

// Drain waits until every subscriber's queue is written to the kernel, then
// half-closes each connection and waits for the subscribers to hang up, so
// no queued message is lost to the close. It stops waiting at ctx's
// deadline. Drain does not stop new connections; call Close afterwards.
func (p *Pub) Drain(ctx context.Context) error {
	for _, pr := range *p.snap.Load() {
		pr.q.closeAfterFlush()
	}
	for _, pr := range *p.snap.Load() {
		select {
		case <-pr.gone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close stops accepting, closes every connection at once and waits for
// every goroutine of the Pub. Queued messages are discarded; call Drain
// first to deliver them. Close is idempotent.
func (p *Pub) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		close(p.closed)
		p.g.Stop()
		peers := make([]*peer, 0, len(p.peers))
		for pr := range p.peers {
			peers = append(peers, pr)
		}
		for nc := range p.shaking {
			nc.Close()
		}
		p.mu.Unlock()
		p.ln.Close()
		for _, pr := range peers {
			pr.kill(ErrClosed)
		}
	})
	p.g.Wait()
	return nil
}
