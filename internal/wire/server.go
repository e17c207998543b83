package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/internal/ratelog"
	"go.uber.org/zap"
)

// ServerStats is a snapshot of a Server's counters.
type ServerStats struct {
	// Conns is the number of open connections.
	Conns int
	// Requests counts requests handed to the handler.
	Requests uint64
	// TooLarge counts requests handed to the handler marked TooLarge.
	TooLarge uint64
	// HandshakeFailed counts connections that failed or timed out in the
	// ZMTP handshake.
	HandshakeFailed uint64
	// TLSFailed counts connections to a tls:// endpoint whose TLS
	// handshake failed or timed out: no client certificate, one the CA
	// pool does not verify, or no TLS at all.
	TLSFailed uint64
	// BadInput counts connections closed for a request over the hard cap
	// or a REQ peer without its envelope.
	BadInput uint64
	// HandlerErrors counts connections closed because the handler failed.
	HandlerErrors uint64
	// IdleClosed counts connections closed after IdleTimeout without a request.
	IdleClosed uint64
	// Evicted counts connections closed to make room for a new one at
	// MaxConns or MaxConnsPerIP: each time the one idle the longest.
	Evicted uint64
	// Refused counts connections closed on arrival, the sum of the next
	// two: the cap was reached and every connection under it had a
	// request in flight.
	Refused uint64
	// RefusedConns: MaxConns connections were open.
	RefusedConns uint64
	// RefusedPerIP: the source address had MaxConnsPerIP connections.
	RefusedPerIP uint64
}

// Server is the reply side of request/reply: it binds like a ZeroMQ ROUTER,
// accepts REQ and DEALER peers, and answers each on its own connection.
// A malformed request or a broken peer affects only that connection.
type Server struct {
	cfg    ServerConfig
	ln     net.Listener
	scheme string
	h      Handler
	g      gogroup.Group
	ctx    context.Context
	stop   context.CancelFunc
	ips    *ipLimiter
	rl     *ratelog.Logger

	mu       sync.Mutex
	conns    map[net.Conn]*connSlot
	busy     int           // requests being served, reply not yet flushed
	draining bool          // Shutdown started: no new requests
	idle     chan struct{} // signalled when busy drops to zero while draining

	requests, tooLarge, hsFailed, badInput, handlerErrs, idleClosed, evicted, refusedConns, refusedPerIP, tlsFailed atomic.Uint64
}

// connSlot is what the Server knows of one open connection, guarded by
// Server.mu: enough to choose which to evict when a cap is reached.
type connSlot struct {
	ip   source
	idle time.Time // since when it has had no request in flight: accept or last reply
	busy bool      // a request is being served
}

// serverWriters lend reply buffers, so an idle connection holds none.
var serverWriters = &writerPool{size: 16 << 10}

// serverReadBuffer is a Server connection's read buffer: requests are
// small, and larger frames are read straight into their own allocation.
const serverReadBuffer = 4 << 10

// Serve binds endpoint ("tcp://*:5562", or "tls://*:5562" with cfg.TLS)
// and serves requests with h until Close.
func Serve(endpoint string, cfg ServerConfig, h Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, scheme, err := listen(endpoint, cfg.TLS)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, ln: ln, scheme: scheme, h: h, ctx: ctx, stop: stop,
		ips:   newIPLimiter(cfg.MaxConnsPerIP),
		rl:    ratelog.New(cfg.Logger, 0),
		conns: make(map[net.Conn]*connSlot),
		idle:  make(chan struct{}, 1),
	}
	s.g.Go(s.acceptLoop)
	return s, nil
}

// Endpoint returns "tcp://host:port" (or "tls://host:port") for the
// bound address.
func (s *Server) Endpoint() string { return endpointOf(s.scheme, s.ln) }

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Broken counts connections closed for bad input, failed handshakes (TLS
// or ZMTP) or handler errors.
func (s *Server) Broken() uint64 {
	return s.hsFailed.Load() + s.tlsFailed.Load() + s.badInput.Load() + s.handlerErrs.Load()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	conns := len(s.conns)
	s.mu.Unlock()
	st := ServerStats{
		Conns:           conns,
		Requests:        s.requests.Load(),
		TooLarge:        s.tooLarge.Load(),
		HandshakeFailed: s.hsFailed.Load(),
		BadInput:        s.badInput.Load(),
		HandlerErrors:   s.handlerErrs.Load(),
		IdleClosed:      s.idleClosed.Load(),
		Evicted:         s.evicted.Load(),
		RefusedConns:    s.refusedConns.Load(),
		RefusedPerIP:    s.refusedPerIP.Load(),
		TLSFailed:       s.tlsFailed.Load(),
	}
	st.Refused = st.RefusedConns + st.RefusedPerIP
	return st
}

func (s *Server) acceptLoop() { acceptLoop(s.ln, s.ctx.Done(), s.admit) }

// admit starts serving a new connection. At MaxConns, or at
// MaxConnsPerIP for its address, it first closes the connection idle the
// longest (of that address, for the latter) that has no request in
// flight: a client that holds connections without using them cannot keep
// out one that has something to ask. The new connection is refused only
// when every connection under the cap is serving a request.
func (s *Server) admit(nc net.Conn) bool {
	ip := sourceOf(nc)
	var evicted []net.Conn
	s.mu.Lock()
	if !s.ips.acquire(ip) {
		victim := s.idlestLocked(ip, true)
		if victim == nil {
			s.mu.Unlock()
			s.refuse(nc, &s.refusedPerIP, "refused-per-ip", "connection refused: too many connections from its address, all busy", s.cfg.MaxConnsPerIP)
			return true
		}
		s.evictLocked(victim)
		evicted = append(evicted, victim)
		s.ips.acquire(ip) // cannot fail: the victim's place is free
	}
	if len(s.conns) >= s.cfg.MaxConns {
		victim := s.idlestLocked(source{}, false)
		if victim == nil {
			s.ips.release(ip)
			s.mu.Unlock()
			s.refuse(nc, &s.refusedConns, "refused-conns", "connection refused: too many connections, all busy", s.cfg.MaxConns)
			return true
		}
		s.evictLocked(victim)
		evicted = append(evicted, victim)
	}
	s.conns[nc] = &connSlot{ip: ip, idle: time.Now()}
	ok := s.g.Go(func() { s.serveConn(nc) })
	if !ok {
		delete(s.conns, nc)
	}
	s.mu.Unlock()
	s.logEvicted(evicted, nc)
	if !ok {
		s.ips.release(ip)
		nc.Close()
	}
	return ok
}

// idlestLocked returns the open connection idle the longest that has no
// request in flight, among those from ip if sameIP; nil if there is none.
// A linear scan: it runs only at a cap, over at most MaxConns entries.
func (s *Server) idlestLocked(ip source, sameIP bool) net.Conn {
	var victim net.Conn
	var since time.Time
	for nc, slot := range s.conns {
		if slot.busy || (sameIP && slot.ip != ip) {
			continue
		}
		if victim == nil || slot.idle.Before(since) {
			victim, since = nc, slot.idle
		}
	}
	return victim
}

// evictLocked closes nc and forgets it at once, so its place is free for
// the connection being admitted; its goroutine ends on the closed socket.
func (s *Server) evictLocked(nc net.Conn) {
	slot := s.conns[nc]
	delete(s.conns, nc)
	s.ips.release(slot.ip)
	nc.Close()
	s.evicted.Add(1)
}

func (s *Server) logEvicted(evicted []net.Conn, by net.Conn) {
	for _, nc := range evicted {
		s.rl.Warn("evicted", "idle connection closed to make room for a new one", zap.Stringer("remote", nc.RemoteAddr()),
			zap.Stringer("new", by.RemoteAddr()), zap.Int("max_conns", s.cfg.MaxConns), zap.Int("max_conns_per_ip", s.cfg.MaxConnsPerIP))
	}
}

func (s *Server) refuse(nc net.Conn, counter *atomic.Uint64, key, msg string, limit int) {
	counter.Add(1)
	s.rl.Warn(key, msg, zap.Stringer("remote", nc.RemoteAddr()), zap.Int("limit", limit))
	nc.Close()
}

func (s *Server) serveConn(nc net.Conn) {
	defer func() {
		s.mu.Lock()
		if slot, ok := s.conns[nc]; ok { // not evicted meanwhile
			delete(s.conns, nc)
			s.ips.release(slot.ip)
		}
		s.mu.Unlock()
		nc.Close()
	}()
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	conn, identity := nc, ""
	if s.cfg.TLS != nil {
		var err error
		if conn, identity, err = s.cfg.TLS.accept(nc, s.cfg.TLS.server, deadline); err != nil {
			s.tlsFailed.Add(1)
			s.rl.Warn("tls", "client TLS handshake failed", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
			return
		}
	}
	peerType, err := handshake(conn, zmq4.Router, s.cfg.Security, true, time.Until(deadline))
	if err == nil && !zmq4.Router.IsCompatible(peerType) {
		err = fmt.Errorf("wire: ROUTER does not talk to %q", peerType)
	}
	if err != nil {
		s.hsFailed.Add(1)
		s.rl.Warn("handshake", "client handshake failed", zap.Stringer("remote", nc.RemoteAddr()), zap.String("identity", identity), zap.Error(err))
		return
	}
	c := &serverConn{s: s, nc: conn, raw: nc, peer: Peer{Remote: remoteOf(nc, sourceOf(nc)), Type: peerType, Identity: identity}}
	defer c.releaseWriter()
	c.serve()
}

// serverConn is one connection of a Server after its handshake.
type serverConn struct {
	s     *Server
	nc    net.Conn // what ZMTP is spoken on: raw, or TLS over it
	raw   net.Conn // the accepted connection, the key of Server.conns
	peer  Peer
	bw    *bufio.Writer // borrowed from serverWriters while a reply is written
	delim bool          // the request being served had an empty delimiter frame
}

func (c *serverConn) serve() {
	s := c.s
	fr := newFrameReader(c.nc, serverReadBuffer, s.cfg.MaxFrame, s.cfg.MaxFrames)
	fr.slabSize = 0
	fr.hardCap = s.cfg.hardCap()
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
			return
		}
		frames, info, err := fr.readMsg(nil)
		if err != nil {
			c.readFailed(err)
			return
		}
		if info.cmd {
			continue
		}
		frames, delim, ok := stripDelimiter(c.peer.Type, frames)
		if !ok {
			s.badInput.Add(1)
			s.rl.Warn("bad-input", "REQ request without its envelope", zap.String("remote", c.peer.Remote))
			return // the peer's state machine is broken
		}
		c.delim = delim
		req := Request{Peer: c.peer, Frames: frames, TooLarge: info.tooLarge, Size: info.size}
		s.requests.Add(1)
		if info.tooLarge {
			s.tooLarge.Add(1)
			s.rl.Warn("request-too-large", "request over MaxFrame or MaxFrames, answered by the handler", zap.String("remote", c.peer.Remote), zap.Int64("size", info.size), zap.Int("max_frame", s.cfg.MaxFrame))
		}
		if !s.beginRequest(c.raw) {
			return // shutting down or evicted: the peer retries elsewhere or later
		}
		err = c.serveRequest(req)
		s.endRequest(c.raw)
		if err != nil {
			return
		}
		if fr.br.Buffered() == 0 {
			c.releaseWriter() // idle until the next request
		}
	}
}

// readFailed counts and logs why reading a request failed.
func (c *serverConn) readFailed(err error) {
	s := c.s
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case isTimeout(err):
		s.idleClosed.Add(1)
		s.cfg.Logger.Debug("idle connection closed", zap.String("remote", c.peer.Remote), zap.Duration("idle_timeout", s.cfg.IdleTimeout))
	case errors.Is(err, ErrFrameTooLarge):
		s.badInput.Add(1)
		s.rl.Warn("bad-input", "request over the hard cap; connection closed", zap.String("remote", c.peer.Remote), zap.Error(err))
	default:
		s.cfg.Logger.Debug("request read failed", zap.String("remote", c.peer.Remote), zap.Error(err))
	}
}

func (c *serverConn) reply(frames ...[]byte) error {
	if c.bw == nil {
		c.bw = serverWriters.get(c.nc)
	}
	if c.delim {
		frames = append([][]byte{{}}, frames...)
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := writeMsg(c.bw, frames)
	return err
}

func (c *serverConn) releaseWriter() {
	if c.bw != nil {
		serverWriters.put(c.bw)
		c.bw = nil
	}
}

// serveRequest runs the handler and flushes its reply.
func (c *serverConn) serveRequest(req Request) error {
	s := c.s
	if err := s.h(s.ctx, req, c.reply); err != nil {
		s.handlerErrs.Add(1)
		s.cfg.Logger.Debug("handler closed connection", zap.String("remote", c.peer.Remote), zap.Error(err))
		return err
	}
	if c.bw == nil {
		return nil // no reply
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
		return err
	}
	return c.bw.Flush()
}

// beginRequest counts a request of nc in service, unless Shutdown
// started or nc was evicted; from here until endRequest nc is not evicted.
func (s *Server) beginRequest(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot := s.conns[nc]
	if s.draining || slot == nil {
		return false
	}
	slot.busy = true
	s.busy++
	return true
}

func (s *Server) endRequest(nc net.Conn) {
	s.mu.Lock()
	if slot := s.conns[nc]; slot != nil {
		slot.busy, slot.idle = false, time.Now()
	}
	s.busy--
	if s.busy == 0 && s.draining {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// Shutdown is the graceful Close: it stops accepting connections and
// requests, waits until every request being served has flushed its reply
// or ctx ends (then it returns ctx.Err()), then closes as Close does. A
// handler may have acted on a request (a publisher counted a subscriber)
// before its reply is written; Shutdown makes sure that reply still goes
// out. Idempotent, and safe after Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	busy := s.busy
	s.mu.Unlock()
	s.ln.Close()
	var err error
	for busy > 0 {
		select {
		case <-s.idle:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
		s.mu.Lock()
		busy = s.busy
		s.mu.Unlock()
	}
	s.Close()
	return err
}

// Close stops accepting, closes every connection and waits for every
// goroutine of the Server, including running handlers (their ctx is
// cancelled). Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stop()
	s.g.Stop()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.g.Wait()
	return nil
}
