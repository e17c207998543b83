package wire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// An inproc:// endpoint is a connection between two parts of one
// process. There is no socket: a connection is a pair of memConns, each
// direction an in-memory pipe, so nothing costs a system call. The ZMTP
// greeting and handshake, subscriptions, requests and replies travel as
// bytes through the pipe, exactly as on tcp://, so every guarantee the
// protocol gives holds (the quorum handshake's nonce proof included).
// What a Pub sends to a Sub that reads in place (SubConfig.Borrow) does
// not: the Pub's writer hands each batch of queued *Msg to the Sub as it
// is (batch lane), and the Sub lends their frames to its consumer, so a
// message's bytes are never copied; the Msg goes back to its owner when
// the consumer releases the delivery.
//
// Bind and connect follow ZeroMQ's inproc: names are process-wide, a
// name is bound at most once, and connecting to a name nobody binds
// fails at once like a refused TCP connection. A Sub retries (so it may
// connect before the bind and joins once it happens); a Client's request
// fails after its attempts.

// Limits of an inproc connection. inprocPipeBytes bounds each direction's
// unread bytes, as a socket buffer would. inprocWindow bounds the batch
// lane: the bytes of batches handed to the Sub and not yet released,
// plus those waiting for it; a Pub's writer waits beyond it, and is cut
// as a slow consumer after SlowTimeout, as when a TCP write makes no
// progress. A batch is always accepted by an empty lane, however large.
const (
	inprocPipeBytes = 256 << 10
	inprocWindow    = 1 << 20
	inprocBacklog   = 128
)

var inprocRegistry = struct {
	sync.Mutex
	names map[string]*inprocListener
}{names: make(map[string]*inprocListener)}

// inprocAddr is the address of both ends of an inproc connection.
type inprocAddr string

func (a inprocAddr) Network() string { return SchemeInproc }
func (a inprocAddr) String() string  { return string(a) }

// inprocListener is a bound inproc:// name.
type inprocListener struct {
	name    string
	conns   chan *memConn
	mu      sync.Mutex
	closed  bool
	done    chan struct{}
	closeMu sync.Once
}

func listenInproc(name string) (net.Listener, error) {
	inprocRegistry.Lock()
	defer inprocRegistry.Unlock()
	if _, ok := inprocRegistry.names[name]; ok {
		return nil, fmt.Errorf("inproc://%s is already bound in this process", name)
	}
	l := &inprocListener{name: name, conns: make(chan *memConn, inprocBacklog), done: make(chan struct{})}
	inprocRegistry.names[name] = l
	return l, nil
}

// errInprocRefused is what connecting to an inproc name nobody binds
// returns.
var errInprocRefused = errors.New("connection refused: nothing is bound to this inproc name")

// dialInproc connects to the inproc name. batches says the dialer reads
// the batch lane (a Sub with Borrow).
func dialInproc(name string, batches bool) (*memConn, error) {
	inprocRegistry.Lock()
	l := inprocRegistry.names[name]
	inprocRegistry.Unlock()
	if l == nil {
		return nil, fmt.Errorf("inproc://%s: %w", name, errInprocRefused)
	}
	client, server := newMemConnPair(name)
	server.peerTakesBatches = batches
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("inproc://%s: %w", name, errInprocRefused)
	}
	select {
	case l.conns <- server:
		return client, nil
	default:
		return nil, fmt.Errorf("inproc://%s: connection refused: %d connections wait to be accepted", name, inprocBacklog)
	}
}

func (l *inprocListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close unbinds the name and closes the connections not yet accepted.
func (l *inprocListener) Close() error {
	l.closeMu.Do(func() {
		inprocRegistry.Lock()
		if inprocRegistry.names[l.name] == l {
			delete(inprocRegistry.names, l.name)
		}
		inprocRegistry.Unlock()
		l.mu.Lock()
		l.closed = true
		close(l.done)
		l.mu.Unlock()
		for {
			select {
			case c := <-l.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *inprocListener) Addr() net.Addr { return inprocAddr(l.name) }

// pipe is one direction of an inproc connection: bytes, and batches on
// the batch lane. Its writer and its reader are the two memConns.
type pipe struct {
	mu      sync.Mutex
	buf     []byte // buf[r:] is unread
	r       int
	batches []*inprocBatch
	// lane is the bytes of batches queued or handed to the reader and
	// not released (inprocWindow).
	lane int64
	// fullAt is when the writer last found the lane full (Unix ns): the
	// reader's consumer was behind.
	fullAt  int64
	wclosed bool // the writer closed or half-closed: EOF once drained
	rclosed bool // the reader closed: writes fail
	// Deadlines of the blocking calls, set by the two ends.
	rdeadline, wdeadline time.Time
	changed              chan struct{} // closed and replaced on a change someone waits for
	waiters              int
}

func newPipe() *pipe { return &pipe{changed: make(chan struct{})} }

// broadcastLocked wakes everyone waiting on p. p.mu must be held.
func (p *pipe) broadcastLocked() {
	if p.waiters == 0 {
		return // nobody to wake: spare the channel
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// waitLocked releases p.mu until p changes or deadline passes, and
// retakes it. It returns os.ErrDeadlineExceeded once deadline passed.
func (p *pipe) waitLocked(deadline func() time.Time) error {
	d := deadline()
	var timeout <-chan time.Time
	if !d.IsZero() {
		left := time.Until(d)
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(left)
		defer t.Stop()
		timeout = t.C
	}
	ch := p.changed
	p.waiters++
	p.mu.Unlock()
	select {
	case <-ch:
	case <-timeout:
	}
	p.mu.Lock()
	p.waiters--
	return nil
}

func (p *pipe) readDeadline() time.Time  { return p.rdeadline }
func (p *pipe) writeDeadline() time.Time { return p.wdeadline }

// read is the reader's Read.
func (p *pipe) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.rclosed:
			return 0, net.ErrClosed
		case p.r < len(p.buf):
			n := copy(b, p.buf[p.r:])
			p.r += n
			if p.r == len(p.buf) {
				p.buf, p.r = p.buf[:0], 0
			}
			p.broadcastLocked()
			return n, nil
		case p.wclosed:
			return 0, io.EOF
		}
		if err := p.waitLocked(p.readDeadline); err != nil {
			return 0, err
		}
	}
}

// write is the writer's Write: it blocks while inprocPipeBytes are
// unread.
func (p *pipe) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	for len(b) > 0 {
		switch {
		case p.wclosed:
			return total, net.ErrClosed
		case p.rclosed:
			return total, io.ErrClosedPipe
		}
		room := inprocPipeBytes - (len(p.buf) - p.r)
		if room <= 0 {
			if err := p.waitLocked(p.writeDeadline); err != nil {
				return total, err
			}
			continue
		}
		if p.r > 0 && len(p.buf)+min(room, len(b)) > cap(p.buf) {
			p.buf, p.r = p.buf[:copy(p.buf, p.buf[p.r:])], 0
		}
		k := min(room, len(b))
		p.buf = append(p.buf, b[:k]...)
		b, total = b[k:], total+k
		p.broadcastLocked()
	}
	return total, nil
}

// inprocBatch is messages a Pub's writer hands to a Sub on the batch
// lane. The Pub's references to them pass to the Sub, which drops them
// with release.
type inprocBatch struct {
	msgs  []*Msg
	bytes int64
	pub   *Pub
	lane  *pipe
}

// release drops the batch's references and frees its place in the lane.
// The frames are the owner's again.
func (b *inprocBatch) release() {
	for _, m := range b.msgs {
		b.pub.unref(m, m.size())
	}
	if b.lane != nil {
		b.lane.mu.Lock()
		b.lane.lane -= b.bytes
		b.lane.broadcastLocked()
		b.lane.mu.Unlock()
	}
}

// sendBatch queues b for the reader, waiting while the lane is over
// inprocWindow (an empty lane takes any batch). On error b was not
// queued: the caller keeps its references.
func (p *pipe) sendBatch(b *inprocBatch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.wclosed:
			return net.ErrClosed
		case p.rclosed:
			return io.ErrClosedPipe
		case p.lane == 0 || p.lane+b.bytes <= inprocWindow:
			b.lane = p
			p.lane += b.bytes
			p.batches = append(p.batches, b)
			p.broadcastLocked()
			return nil
		}
		p.fullAt = time.Now().UnixNano()
		if err := p.waitLocked(p.writeDeadline); err != nil {
			return err
		}
	}
}

// fullSince returns when the writer last found the lane full (Unix ns,
// 0: never).
func (p *pipe) fullSince() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fullAt
}

// recvBatch takes the next batch; io.EOF once the writer closed and
// nothing is left.
func (p *pipe) recvBatch() (*inprocBatch, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.rclosed:
			return nil, net.ErrClosed
		case len(p.batches) > 0:
			b := p.batches[0]
			p.batches[0] = nil
			p.batches = p.batches[1:]
			if len(p.batches) == 0 {
				p.batches = nil
			}
			return b, nil
		case p.wclosed:
			return nil, io.EOF
		}
		if err := p.waitLocked(p.readDeadline); err != nil {
			return nil, err
		}
	}
}

// memConn is one end of an inproc connection.
type memConn struct {
	name    string
	in, out *pipe
	// peerTakesBatches (the accepted end only): the dialer reads what
	// this end sends on the batch lane instead of as bytes.
	peerTakesBatches bool
	closeOnce        sync.Once
}

func newMemConnPair(name string) (client, server *memConn) {
	a, b := newPipe(), newPipe()
	return &memConn{name: name, in: a, out: b}, &memConn{name: name, in: b, out: a}
}

func (c *memConn) Read(b []byte) (int, error)  { return c.in.read(b) }
func (c *memConn) Write(b []byte) (int, error) { return c.out.write(b) }

// Close ends both directions: the peer reads what was sent, then EOF;
// what was sent to this end and not read is dropped (batches released).
func (c *memConn) Close() error {
	c.closeOnce.Do(func() {
		c.out.mu.Lock()
		c.out.wclosed = true
		c.out.broadcastLocked()
		c.out.mu.Unlock()
		c.in.mu.Lock()
		c.in.rclosed = true
		dropped := c.in.batches
		c.in.batches = nil
		c.in.buf, c.in.r = nil, 0
		c.in.broadcastLocked()
		c.in.mu.Unlock()
		for _, b := range dropped {
			b.release()
		}
	})
	return nil
}

// CloseWrite half-closes: the peer reads what was sent, then EOF.
func (c *memConn) CloseWrite() error {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	c.out.wclosed = true
	c.out.broadcastLocked()
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return inprocAddr(c.name) }
func (c *memConn) RemoteAddr() net.Addr { return inprocAddr(c.name) }

func (c *memConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.in.mu.Lock()
	c.in.rdeadline = t
	c.in.broadcastLocked()
	c.in.mu.Unlock()
	return nil
}

func (c *memConn) SetWriteDeadline(t time.Time) error {
	c.out.mu.Lock()
	c.out.wdeadline = t
	c.out.broadcastLocked()
	c.out.mu.Unlock()
	return nil
}

// batchLane returns nc as a memConn whose peer reads the batch lane, or
// nil.
func batchLane(nc net.Conn) *memConn {
	if mc, ok := nc.(*memConn); ok && mc.peerTakesBatches {
		return mc
	}
	return nil
}
