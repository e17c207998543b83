package wire

import (
	"sync"
	"sync/atomic"
)

// sendQueue is the queue of messages for one connection. Send appends;
// the writer takes everything queued at once, so a busy connection writes
// large batches and an idle one writes each message immediately.
type sendQueue struct {
	// bytes counts what was queued and not yet handed to the write
	// buffer, including the writer's current batch; count is the same in
	// messages. Both are read without the lock (pacing, eviction).
	bytes atomic.Int64
	count atomic.Int32

	mu       sync.Mutex
	msgs     []*Msg
	overflow int  // messages refused for MaxQueueBytes; dropped once the connection is cut
	closing  bool // Shutdown asked for a flush and close
	linger   bool // with closing: half-close and wait for the peer to hang up
	dead     bool
	ready    chan struct{} // signalled when messages arrive
}

func newSendQueue() sendQueue {
	return sendQueue{ready: make(chan struct{}, 1)}
}

// pushResult says what push did with a message.
type pushResult int

const (
	pushed   pushResult = iota // queued
	pushOver                   // not queued: over the hard bound; the connection must be cut
	pushGone                   // not queued: the connection is going away (cut or shutting down)
)

// push queues m unless that takes a non-empty queue above limit. It
// returns the bytes queued afterwards.
func (q *sendQueue) push(m *Msg, size, limit int) (int64, pushResult) {
	q.mu.Lock()
	if q.dead || q.closing {
		q.mu.Unlock()
		return 0, pushGone
	}
	b := q.bytes.Load()
	if b > 0 && b+int64(size) > int64(limit) {
		q.overflow++
		q.mu.Unlock()
		return b, pushOver
	}
	m.retain()
	q.msgs = append(q.msgs, m)
	b = q.bytes.Add(int64(size))
	q.count.Add(1)
	q.mu.Unlock()
	signal(q.ready)
	return b, pushed
}

// written accounts for one message of size bytes handed to the write
// buffer, and returns the bytes queued before and after.
func (q *sendQueue) written(size int) (before, after int64) {
	q.count.Add(-1)
	after = q.bytes.Add(-int64(size))
	return after + int64(size), after
}

// take moves every queued message into buf; it also says whether
// Shutdown asked for a flush (and whether to linger after it).
func (q *sendQueue) take(buf []*Msg) (_ []*Msg, closing, linger bool) {
	q.mu.Lock()
	buf = append(buf, q.msgs...)
	clear(q.msgs)
	q.msgs = q.msgs[:0]
	closing, linger = q.closing, q.linger
	q.mu.Unlock()
	return buf, closing, linger
}

// closeAfterFlush makes the writer flush what is queued and then close
// the connection, or half-close it if linger is set.
func (q *sendQueue) closeAfterFlush(linger bool) {
	q.mu.Lock()
	q.closing, q.linger = true, linger
	q.mu.Unlock()
	signal(q.ready)
}

// discard kills the queue and returns what it held for the caller to
// release, and how many messages that drops, counting those refused for
// MaxQueueBytes.
func (q *sendQueue) discard() (msgs []*Msg, dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dead = true
	msgs, q.msgs = q.msgs, nil
	for _, m := range msgs {
		q.written(m.size())
	}
	return msgs, len(msgs) + q.overflow
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
