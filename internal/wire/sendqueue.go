package wire

import "sync"

// sendQueue is the queue of messages for one connection. Send appends;
// the writer takes everything queued at once, so a busy connection writes
// large batches and an idle one writes each message immediately.
type sendQueue struct {
	mu   sync.Mutex
	msgs []*Msg
	seqs []uint64 // the Pub's send sequence of each message in msgs
	// batchSeq is the send sequence of the first message of the batch the
	// writer took last, 0 when it took nothing: with seqs, how far behind
	// the connection is.
	batchSeq uint64
	// bytes counts what was queued and not yet handed to a write buffer,
	// including the writer's current batch.
	bytes    int64
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

// push queues m, the Pub's send number seq, unless that takes a
// non-empty queue above limit. It returns the bytes queued afterwards.
func (q *sendQueue) push(m *Msg, seq uint64, size, limit int) (int64, pushResult) {
	q.mu.Lock()
	if q.dead || q.closing {
		q.mu.Unlock()
		return 0, pushGone
	}
	if q.bytes > 0 && q.bytes+int64(size) > int64(limit) {
		q.overflow++
		b := q.bytes
		q.mu.Unlock()
		return b, pushOver
	}
	m.retain()
	q.msgs = append(q.msgs, m)
	q.seqs = append(q.seqs, seq)
	q.bytes += int64(size)
	b := q.bytes
	q.mu.Unlock()
	signal(q.ready)
	return b, pushed
}

// written accounts for n bytes of messages handed to a write buffer, and
// returns the bytes queued before and after.
func (q *sendQueue) written(n int64) (before, after int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	before = q.bytes
	q.bytes -= n
	return before, q.bytes
}

// queued returns the bytes queued.
func (q *sendQueue) queued() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// behind returns the bytes queued and the send number of the oldest
// message not yet written (0: none), and whether messages wait behind
// the writer's batch.
func (q *sendQueue) behind() (bytes int64, oldest uint64, waiting bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	oldest = q.batchSeq
	if oldest == 0 && len(q.seqs) > 0 {
		oldest = q.seqs[0]
	}
	return q.bytes, oldest, len(q.msgs) > 0
}

// take moves every queued message into buf; it also says whether
// Shutdown asked for a flush (and whether to linger after it).
func (q *sendQueue) take(buf []*Msg) (_ []*Msg, closing, linger bool) {
	q.mu.Lock()
	buf = append(buf, q.msgs...)
	q.batchSeq = 0
	if len(q.seqs) > 0 {
		q.batchSeq = q.seqs[0]
	}
	clear(q.msgs)
	q.msgs, q.seqs = q.msgs[:0], q.seqs[:0]
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

// lingering reports whether Shutdown asked for a flush that waits for
// the subscriber: its writes are then bounded by Shutdown's ctx, not by
// SlowTimeout.
func (q *sendQueue) lingering() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing && q.linger
}

// discard kills the queue and returns what it held for the caller to
// release, and how many messages that drops, counting those refused for
// MaxQueueBytes.
func (q *sendQueue) discard() (msgs []*Msg, dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dead = true
	msgs, q.msgs, q.seqs = q.msgs, nil, nil
	for _, m := range msgs {
		q.bytes -= int64(m.size())
	}
	return msgs, len(msgs) + q.overflow
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
