package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// peer is one subscriber connection of a Pub: a queue filled by Send, a
// writer goroutine that owns the socket's write side, and a reader
// goroutine that owns its read side and tracks subscriptions.
//
// A peer is reported gone (PeerSlow, PeerDisconnected) only once three
// things happened: kill, the writer's exit, and the PeerConnected event.
// By then the writer knows which messages of the batch it was writing
// never reached the kernel, so the report counts every message the
// connection lost, and PeerConnected always comes first.
type peer struct {
	pub    *Pub
	nc     net.Conn
	remote string
	q      sendQueue
	subs   atomic.Pointer[[][]byte]

	killOnce sync.Once
	gone     chan struct{}
	err      error // why kill was called; set before gone is closed
	queued   int   // messages kill discarded from the queue
	inFlight int   // messages of the writer's last batch that were not written
	parts    atomic.Int32
}

// peerParts is how many of kill, writer exit and PeerConnected precede the report.
const peerParts = 3

func newPeer(p *Pub, nc net.Conn) *peer {
	pr := &peer{
		pub:    p,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
		q:      newSendQueue(),
		gone:   make(chan struct{}),
	}
	pr.subs.Store(&[][]byte{})
	return pr
}

// subscribed reports whether any of the peer's prefixes matches topic.
func (pr *peer) subscribed(topic []byte) bool {
	for _, s := range *pr.subs.Load() {
		if bytes.HasPrefix(topic, s) {
			return true
		}
	}
	return false
}

// kill disconnects the peer once, for cause err (nil: orderly hang-up).
// Send stops seeing the peer at once; the report follows in done.
func (pr *peer) kill(err error) {
	pr.killOnce.Do(func() {
		pr.err = err
		pr.queued = pr.q.discard()
		pr.nc.Close()
		close(pr.gone)
		pr.pub.remove(pr)
		pr.done()
	})
}

// done marks one of the peerParts; the last one reports the peer gone.
func (pr *peer) done() {
	if pr.parts.Add(1) != peerParts {
		return
	}
	dropped := pr.queued + pr.inFlight
	if errors.Is(pr.err, errSlowConsumer) {
		pr.pub.slow.Add(1)
		pr.pub.dropped.Add(uint64(dropped))
		pr.pub.emit(PeerEvent{Type: PeerSlow, Remote: pr.remote, Dropped: dropped, Err: pr.err})
	}
	pr.pub.emit(PeerEvent{Type: PeerDisconnected, Remote: pr.remote, Dropped: dropped, Err: pr.err})
	pr.pub.cfg.Logger.Debug("subscriber disconnected", zap.String("remote", pr.remote), zap.Int("dropped", dropped), zap.Error(pr.err))
}

func (pr *peer) writeLoop() {
	defer pr.done()
	cw := &countingWriter{w: pr.nc}
	bw := bufio.NewWriterSize(cw, ioBufferSize)
	var batch []*Msg
	var ends []int64 // stream offset at which each written message of the batch ends
	var fed int64    // bytes handed to bw so far
	for {
		select {
		case <-pr.q.ready:
		case <-pr.gone:
			return
		}
		var closing bool
		batch, closing = pr.q.take(batch[:0])
		ends = ends[:0]
		err := pr.nc.SetWriteDeadline(time.Now().Add(pr.pub.cfg.SlowTimeout))
		for _, m := range batch {
			if err == nil {
				var n int
				n, err = writeMsg(bw, m.Frames)
				fed += int64(n)
				if err == nil {
					ends = append(ends, fed)
				}
			}
			m.release()
		}
		clear(batch)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			// A message is delivered once its last byte is with the kernel;
			// the rest of the batch is lost with the connection.
			pr.inFlight = len(batch) - len(ends)
			for _, end := range ends {
				if end > cw.n {
					pr.inFlight++
				}
			}
			if isTimeout(err) {
				err = errSlowConsumer
			}
			pr.kill(err)
			return
		}
		if closing {
			// Everything queued before Drain is with the kernel: send FIN and
			// let the reader see the subscriber hang up.
			if tc, ok := pr.nc.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// countingWriter counts the bytes its writer accepted.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (pr *peer) readLoop() {
	fr := newFrameReader(pr.nc, 4096, 4)
	var frames [][]byte
	for {
		var cmd bool
		var err error
		frames, cmd, err = fr.readMsg(frames)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			pr.kill(err)
			return
		}
		if cmd {
			switch name, data := commandName(frames[0]); name {
			case "SUBSCRIBE":
				pr.setSub(data, true)
			case "CANCEL":
				pr.setSub(data, false)
			}
			continue
		}
		// ZMTP 3.0 subscriptions are one-frame messages: 1 or 0, then the prefix.
		if len(frames) == 1 && len(frames[0]) > 0 && frames[0][0] <= 1 {
			pr.setSub(frames[0][1:], frames[0][0] == 1)
		}
	}
}

// setSub adds or removes one prefix. Only the reader calls it, so a
// copy-on-write store is enough for Send to read without locking.
func (pr *peer) setSub(prefix []byte, on bool) {
	old := *pr.subs.Load()
	next := make([][]byte, 0, len(old)+1)
	found := false
	for _, s := range old {
		if bytes.Equal(s, prefix) {
			found = true
			if !on {
				continue
			}
		}
		next = append(next, s)
	}
	if on && !found {
		next = append(next, bytes.Clone(prefix))
	}
	pr.subs.Store(&next)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sendQueue is a byte-bounded queue of messages for one connection. Send
// appends; the writer takes everything queued at once, so a busy
// connection writes large batches and an idle one writes each message
// immediately.
type sendQueue struct {
	mu      sync.Mutex
	msgs    []*Msg
	bytes   int
	waiting bool // Send found the queue full and waits with one more message
	closing bool // Drain asked for a flush and half-close
	dead    bool
	ready   chan struct{} // signalled when messages arrive
	space   chan struct{} // signalled when the writer took messages
}

func newSendQueue() sendQueue {
	return sendQueue{ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// pushResult says what push did with a message.
type pushResult int

const (
	pushed   pushResult = iota // queued
	pushFull                   // not queued: over the limit; the queue now counts it as waiting
	pushGone                   // not queued: the connection is going away (killed or draining)
)

// push queues m unless that would exceed limit on a non-empty queue.
func (q *sendQueue) push(m *Msg, size, limit int) pushResult {
	q.mu.Lock()
	if q.dead || q.closing {
		q.mu.Unlock()
		return pushGone
	}
	if q.bytes > 0 && q.bytes+size > limit {
		q.waiting = true
		q.mu.Unlock()
		return pushFull
	}
	q.waiting = false
	m.retain()
	q.msgs = append(q.msgs, m)
	q.bytes += size
	q.mu.Unlock()
	signal(q.ready)
	return pushed
}

// stopWaiting withdraws the waiting message (Send gave up on it). It
// reports false if the queue died first, which counted it as dropped.
func (q *sendQueue) stopWaiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting = false
	return !q.dead
}

// take moves every queued message into buf.
func (q *sendQueue) take(buf []*Msg) ([]*Msg, bool) {
	q.mu.Lock()
	buf = append(buf, q.msgs...)
	clear(q.msgs)
	q.msgs = q.msgs[:0]
	q.bytes = 0
	closing := q.closing
	q.mu.Unlock()
	signal(q.space)
	return buf, closing
}

func (q *sendQueue) closeAfterFlush() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	signal(q.ready)
}

// discard kills the queue and releases what it held; it returns how many
// messages were dropped, counting one that Send was waiting to queue.
func (q *sendQueue) discard() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dead = true
	n := len(q.msgs)
	if q.waiting {
		n++
	}
	for _, m := range q.msgs {
		m.release()
	}
	clear(q.msgs)
	q.msgs = nil
	return n
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
