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
	"go.uber.org/zap"
)

// ServerConfig configures a Server. Zero fields take the defaults shown.
type ServerConfig struct {
	// HandshakeTimeout bounds a new connection's ZMTP handshake. Default 2 s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds writing one reply. Default 2 s.
	WriteTimeout time.Duration
	// MaxConns bounds open connections; more are closed at once. Default 1024.
	MaxConns int
	// MaxFrame bounds a request frame in bytes. Default 64 KiB.
	MaxFrame int
	// MaxFrames bounds the frames of a request. Default 8.
	MaxFrames int
	// Security is the ZMTP security mechanism; nil means NULL.
	Security zmq4.Security
	// Logger receives debug lines about broken connections; nil means none.
	Logger *zap.Logger
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 2 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 1024
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 64 << 10
	}
	if c.MaxFrames <= 0 {
		c.MaxFrames = 8
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Peer describes the client connection a request came from.
type Peer struct {
	Remote string
	Type   zmq4.SocketType
}

// Handler serves one request. It may call reply any number of times (a
// REQ peer expects exactly one). Returning an error closes the connection.
// Requests of one connection are served one at a time, in order; requests
// of different connections concurrently.
type Handler func(ctx context.Context, p Peer, req [][]byte, reply func(frames ...[]byte) error) error

// Server is the reply side of request/reply: it binds like a ZeroMQ ROUTER,
// accepts REQ and DEALER peers, and answers each on its own connection.
// A malformed request or a broken peer affects only that connection.
type Server struct {
	cfg  ServerConfig
	ln   net.Listener
	h    Handler
	g    gogroup.Group
	ctx  context.Context
	stop context.CancelFunc

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	busy     int           // requests being served, reply not yet flushed
	draining bool          // Shutdown started: no new requests
	idle     chan struct{} // signalled when busy drops to zero while draining

	refused, broken atomic.Uint64
}

// Serve binds endpoint and serves requests with h until Close.
func Serve(endpoint string, cfg ServerConfig, h Handler) (*Server, error) {
	addr, err := SplitEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wire: listen %s: %w", endpoint, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg.withDefaults(), ln: ln, h: h, ctx: ctx, stop: stop, conns: make(map[net.Conn]struct{}), idle: make(chan struct{}, 1)}
	s.g.Go(s.acceptLoop)
	return s, nil
}

// Endpoint returns "tcp://host:port" for the bound address.
func (s *Server) Endpoint() string { return "tcp://" + s.ln.Addr().String() }

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Broken counts connections closed for bad input or failed handshakes.
func (s *Server) Broken() uint64 { return s.broken.Load() }

func (s *Server) acceptLoop() { acceptLoop(s.ln, s.ctx.Done(), s.admit) }

// admit starts serving a new connection, or refuses it beyond MaxConns.
func (s *Server) admit(nc net.Conn) bool {
	s.mu.Lock()
	if len(s.conns) >= s.cfg.MaxConns {
		s.mu.Unlock()
		s.refused.Add(1)
		nc.Close()
		return true
	}
	s.conns[nc] = struct{}{}
	ok := s.g.Go(func() { s.serveConn(nc) })
	s.mu.Unlock()
	if !ok {
		nc.Close()
	}
	return ok
}

func (s *Server) serveConn(nc net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		nc.Close()
	}()
	peerType, err := handshake(nc, zmq4.Router, s.cfg.Security, true, s.cfg.HandshakeTimeout)
	if err == nil && !zmq4.Router.IsCompatible(peerType) {
		err = fmt.Errorf("wire: ROUTER does not talk to %q", peerType)
	}
	if err != nil {
		s.broken.Add(1)
		s.cfg.Logger.Debug("handshake failed", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
		return
	}
	p := Peer{Remote: nc.RemoteAddr().String(), Type: peerType}
	fr := newFrameReader(nc, s.cfg.MaxFrame, s.cfg.MaxFrames)
	bw := bufio.NewWriterSize(nc, 16<<10)
	isReq := peerType == zmq4.Req
	reply := func(frames ...[]byte) error {
		if isReq {
			frames = append([][]byte{{}}, frames...)
		}
		if err := nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
			return err
		}
		_, err := writeMsg(bw, frames)
		return err
	}
	var frames [][]byte
	for {
		var cmd bool
		frames, cmd, err = fr.readMsg(frames)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.broken.Add(1)
				s.cfg.Logger.Debug("request read failed", zap.String("remote", p.Remote), zap.Error(err))
			}
			return
		}
		if cmd {
			continue
		}
		req := frames
		if isReq {
			if len(req) < 2 || len(req[0]) != 0 {
				s.broken.Add(1)
				return // not a REQ envelope: the peer's state machine is broken
			}
			req = req[1:]
		}
		if !s.beginRequest() {
			return // shutting down: the peer retries elsewhere or later
		}
		err = s.serveRequest(nc, bw, p, req, reply)
		s.endRequest()
		if err != nil {
			return
		}
	}
}

// serveRequest runs the handler and flushes its reply.
func (s *Server) serveRequest(nc net.Conn, bw *bufio.Writer, p Peer, req [][]byte, reply func(...[]byte) error) error {
	if err := s.h(s.ctx, p, req, reply); err != nil {
		s.broken.Add(1)
		s.cfg.Logger.Debug("handler closed connection", zap.String("remote", p.Remote), zap.Error(err))
		return err
	}
	if err := nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
		return err
	}
	return bw.Flush()
}

// beginRequest counts a request in service, unless Shutdown started.
func (s *Server) beginRequest() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.busy++
	return true
}

func (s *Server) endRequest() {
	s.mu.Lock()
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
// or ctx ends, then closes as Close does. A handler may have acted on a
// request (a publisher counted a subscriber) before its reply is written;
// Shutdown makes sure that reply still goes out. Idempotent, and safe
// after Close.
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
