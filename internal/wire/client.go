package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
)

// ClientConfig configures a Client. Zero fields take the defaults shown.
type ClientConfig struct {
	// Type is the socket type announced in the handshake: zmq4.Req
	// (default; requests travel behind an empty delimiter frame, as libzmq's
	// REQ sends them) or zmq4.Dealer (frames travel as they are).
	Type zmq4.SocketType
	// Timeout bounds one attempt: dial, handshake, send and the reply, all
	// together (for Stream, each later reply gets a fresh Timeout). A
	// Request therefore returns within Attempts*Timeout. Default 1 s.
	Timeout time.Duration
	// Attempts is how many times Request tries before giving up. Default 3.
	Attempts int
	// MaxFrame bounds a reply frame in bytes. Default 64 MiB.
	MaxFrame int
	// IdleClose drops the connection when it was not used for this long,
	// before the next request is written into it, so that a request never
	// goes into a connection the server already closed for being idle; the
	// request dials a new one. It must be below the server's IdleTimeout
	// (ServerConfig.IdleTimeout, 30 s by default). Default 20 s.
	IdleClose time.Duration
	// Security is the ZMTP security mechanism; nil means NULL.
	Security zmq4.Security
	// TLS is this side's certificate and the CA pool that verifies the
	// server, for a tls:// endpoint, which requires it; a tcp:// endpoint
	// does not use it.
	TLS *TLS
	// Borrow makes replies alias a buffer the Client reuses, so reading
	// them allocates nothing: a Stream callback's frames are valid until
	// it returns, a Request's reply until the next call. Without it,
	// replies are the caller's to keep.
	Borrow bool
}

// DefaultClientIdleClose is ClientConfig.IdleClose's default.
const DefaultClientIdleClose = 20 * time.Second

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Type == "" {
		c.Type = zmq4.Req
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.IdleClose <= 0 {
		c.IdleClose = DefaultClientIdleClose
	}
	return c
}

// Client sends requests to one endpoint and reads replies with deadlines.
// A lost reply or a dead server never leaves it stuck: the connection is
// dropped and the next attempt dials a fresh one (the zguide's Lazy
// Pirate). Methods are safe for concurrent use and run one at a time.
type Client struct {
	cfg      ClientConfig
	endpoint string
	target   target
	ctx      context.Context // ends at Close
	cancel   context.CancelFunc
	now      func() time.Time // the clock IdleClose is measured on; tests replace it

	mu       sync.Mutex
	nc       net.Conn
	fr       *frameReader
	frames   [][]byte // the last reply's frame list, reused under Borrow
	bw       *bufio.Writer
	lastUsed time.Time // when the connection last finished a request
}

// NewClient returns a Client for endpoint. It does not connect until the
// first request.
func NewClient(endpoint string, cfg ClientConfig) (*Client, error) {
	tg, err := newTarget(endpoint, cfg.TLS)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{cfg: cfg.withDefaults(), endpoint: endpoint, target: tg, ctx: ctx, cancel: cancel, now: time.Now}, nil
}

// Endpoint returns the server endpoint.
func (c *Client) Endpoint() string { return c.endpoint }

// Request sends frames and returns the reply. Each attempt has Timeout;
// after a failed attempt the connection is recreated and the request sent
// again, so requests must be idempotent. It returns ctx.Err(), ErrClosed
// if the Client is closed, or ErrTimeout wrapping the last failure after
// Attempts tries.
func (c *Client) Request(ctx context.Context, frames [][]byte) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, done := c.bound(ctx)
	defer done()
	var last error
	for i := 0; i < c.cfg.Attempts; i++ {
		reply, err := c.attempt(ctx, frames, nil)
		if err == nil {
			return reply, nil
		}
		c.reset()
		if err := c.ctxErr(ctx); err != nil {
			return nil, err
		}
		last = err
	}
	return nil, fmt.Errorf("%w: %s after %d attempts: %v", ErrTimeout, c.endpoint, c.cfg.Attempts, last)
}

// Stream sends frames once and passes each reply to fn until fn returns
// done or an error. Each reply must arrive within Timeout. On any failure
// the connection is dropped; the caller decides whether to ask again.
// It returns ErrClosed if the Client is closed.
func (c *Client) Stream(ctx context.Context, frames [][]byte, fn func(reply [][]byte) (done bool, err error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, done := c.bound(ctx)
	defer done()
	_, err := c.attempt(ctx, frames, fn)
	if err != nil {
		c.reset()
		if cerr := c.ctxErr(ctx); cerr != nil {
			return cerr
		}
	}
	return err
}

// bound returns ctx ended also by Close.
func (c *Client) bound(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// ctxErr is ErrClosed after Close, else ctx's error.
func (c *Client) ctxErr(ctx context.Context) error {
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	return ctx.Err()
}

// attempt runs one try. Its deadline covers dial, handshake, the request
// and the first reply; for Stream each later reply gets a fresh Timeout.
func (c *Client) attempt(ctx context.Context, frames [][]byte, fn func([][]byte) (bool, error)) ([][]byte, error) {
	if err := c.ctxErr(ctx); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.cfg.Timeout)
	if c.nc != nil && c.now().Sub(c.lastUsed) >= c.cfg.IdleClose {
		c.reset() // the server may be closing it as idle right now
	}
	if err := c.connect(ctx, deadline); err != nil {
		return nil, err
	}
	// The func below may run after attempt returned and reset cleared
	// c.nc, so it must use its own copy.
	nc := c.nc
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	if c.cfg.Type == zmq4.Req {
		frames = append([][]byte{{}}, frames...)
	}
	if _, err := writeMsg(c.bw, frames); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		var reuse [][]byte
		if c.cfg.Borrow {
			reuse = c.frames[:0]
		}
		reply, info, err := c.fr.readMsg(reuse)
		if c.cfg.Borrow {
			c.frames = reply[:0]
		}
		if err != nil {
			return nil, err
		}
		if info.cmd {
			continue
		}
		if c.cfg.Type == zmq4.Req {
			if len(reply) < 2 || len(reply[0]) != 0 {
				return nil, errors.New("wire: reply without the REQ delimiter frame")
			}
			reply = reply[1:]
		}
		c.lastUsed = c.now()
		if fn == nil {
			return reply, nil
		}
		done, err := fn(reply)
		if done || err != nil {
			return nil, err
		}
		if err := nc.SetDeadline(time.Now().Add(c.cfg.Timeout)); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err // ctx may have ended before the new deadline replaced its own
		}
	}
}

// connect dials and handshakes unless connected, all before deadline.
func (c *Client) connect(ctx context.Context, deadline time.Time) error {
	if c.nc != nil {
		return nil
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err := c.target.dial(dctx, false)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	nc, err := c.target.secure(dctx, raw)
	var peerType zmq4.SocketType
	if err == nil {
		peerType, err = handshake(nc, c.cfg.Type, c.cfg.Security, false, time.Until(deadline))
		err = explainTLS(err)
	}
	if !stop() {
		err = ctx.Err()
	}
	if err == nil && !c.cfg.Type.IsCompatible(peerType) {
		err = fmt.Errorf("wire: %s does not talk to %q", c.cfg.Type, peerType)
	}
	if err != nil {
		raw.Close()
		return err
	}
	c.nc = nc
	c.fr = newFrameReader(nc, ioBufferSize, c.cfg.MaxFrame, DefaultMaxFrames)
	c.fr.reuse = c.cfg.Borrow
	c.bw = bufio.NewWriterSize(nc, 4096)
	c.lastUsed = c.now()
	return nil
}

func (c *Client) reset() {
	if c.nc != nil {
		c.nc.Close()
		c.nc, c.fr, c.bw = nil, nil, nil
	}
}

// Close drops the connection for good: a request in progress returns
// ErrClosed (Close waits for it), and so does every later one.
// Idempotent.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	return nil
}
