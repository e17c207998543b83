package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
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
// things happened: kill, the writer's exit and the reader's exit. The
// reader starts after PeerConnected and emits every PeerSubscribed, so
// the report comes after all of them; and the writer knows by then which
// messages of the batch it was writing never reached the kernel, so the
// report counts every message the connection lost.
type peer struct {
	pub    *Pub
	id     ConnID
	nc     net.Conn
	ip     source
	remote string
	// identity is the peer's certificate identity on tls://, "" on tcp://.
	identity string
	q        sendQueue
	subs     *subSet
	// subBytes is what subs takes (MaxSubscriptionBytes), written under
	// subMu and read by any goroutine looking for a connection to evict.
	// subsReleased is set when kill gave subBytes back to the Pub's
	// total: from then on the subscriptions are not counted.
	subBytes     atomic.Int64
	subMu        sync.Mutex
	subsReleased bool
	class        atomic.Uint32 // Class, set by Pub.SetClass
	// lastWrite is when the connection last took bytes (Unix ns): a
	// subscriber that is behind but still reading applies backpressure.
	lastWrite atomic.Int64
	// behind: its queue passed BehindBytes since TakeBehind last
	// reported it.
	behind atomic.Bool
	// offLive: TakeBehind reported it or Offer fed it, and no live Send
	// queued for it since. The application feeds such a connection at the
	// pace it reads and its queue is bounded by what it was sent, so a
	// write that waits on it holds up nobody: SlowTimeout does not cut it.
	offLive atomic.Bool

	killOnce sync.Once
	gone     chan struct{}
	err      error // why kill was called; set before gone is closed
	queued   int   // messages kill discarded, or refused for MaxQueueBytes
	inFlight int   // messages of the writer's last batch that were not written
	parts    atomic.Int32
}

// Class returns the connection's class.
func (pr *peer) Class() Class { return Class(pr.class.Load()) }

// peerParts is how many of kill, writer exit and reader exit precede the report.
const peerParts = 3

// Reading side limits of a Pub connection: it only ever receives
// subscriptions, so its buffer is small and frames are allocated one by
// one (an idle connection holds no slab).
const (
	peerReadBuffer = 512
	peerMaxFrame   = 4096
	peerMaxFrames  = 4
)

func newPeer(p *Pub, id ConnID, nc net.Conn, ip source, identity string) *peer {
	return &peer{
		pub:      p,
		id:       id,
		nc:       nc,
		ip:       ip,
		identity: identity,
		remote:   remoteOf(nc, ip),
		q:        newSendQueue(),
		subs:     newSubSet(),
		gone:     make(chan struct{}),
	}
}

// kill disconnects the peer, for cause err (nil: orderly), and reports
// whether this call did it. Send stops seeing the peer at once; the
// report follows in done.
func (pr *peer) kill(err error) bool {
	killed := false
	pr.killOnce.Do(func() {
		killed = true
		pr.err = err
		msgs, dropped := pr.q.discard()
		for _, m := range msgs {
			pr.pub.unref(m, m.size())
		}
		pr.queued = dropped
		pr.releaseSubs()
		pr.nc.Close()
		close(pr.gone)
		pr.pub.remove(pr)
		pr.done()
	})
	return killed
}

// done marks one of the peerParts; the last one reports the peer gone.
func (pr *peer) done() {
	if pr.parts.Add(1) != peerParts {
		return
	}
	p := pr.pub
	dropped := pr.queued + pr.inFlight
	if errors.Is(pr.err, ErrSlowConsumer) {
		p.slow.Add(1)
		p.dropped.Add(uint64(dropped))
		p.emit(PeerEvent{Type: PeerSlow, Conn: pr.id, Remote: pr.remote, Identity: pr.identity, Dropped: dropped, Err: pr.err})
		p.rl.Warn("slow-consumer", "subscriber disconnected as a slow consumer", zap.String("remote", pr.remote), zap.String("identity", pr.identity), zap.Int("dropped", dropped), zap.Error(pr.err))
	}
	p.emit(PeerEvent{Type: PeerDisconnected, Conn: pr.id, Remote: pr.remote, Identity: pr.identity, Dropped: dropped, Err: pr.err})
	p.cfg.Logger.Debug("subscriber disconnected", zap.String("remote", pr.remote), zap.Int("dropped", dropped), zap.Error(pr.err))
}

// smallBatch is the largest batch a writer encodes into its own small
// buffer; larger batches go through a borrowed 64 KiB buffered writer.
const smallBatch = 2 << 10

// writeLoop writes what Send queues. A connection that receives a
// message now and then (heartbeats) writes each batch from a small buffer
// of its own; one that is busy borrows a 64 KiB buffered writer from a
// pool and gives it back when its traffic turns small again, so only
// busy connections hold one.
func (pr *peer) writeLoop() {
	defer pr.done()
	p := pr.pub
	dw := &deadlineWriter{nc: pr.nc, timeout: p.cfg.SlowTimeout, patient: pr.patient}
	var (
		bw    *bufio.Writer // borrowed while busy
		small []byte        // encodes small batches
		batch []*Msg
		ends  []int64 // stream offset at which each written message of the batch ends
		fed   int64   // bytes handed to a buffer so far
	)
	defer func() {
		if bw != nil {
			pubWriters.put(bw)
		}
	}()
	lane := batchLane(pr.nc)
	for {
		select {
		case <-pr.q.ready:
		case <-pr.gone:
			return
		}
		for {
			var closing, linger bool
			batch, closing, linger = pr.q.take(batch[:0])
			if len(batch) == 0 && !closing {
				break
			}
			total := 0
			for _, m := range batch {
				total += m.size()
			}
			ends = ends[:0]
			var err error
			if lane != nil {
				// inproc://: the batch itself goes to the Sub; every
				// message of it was delivered, or none.
				if err = pr.handBatch(lane, batch, total); err == nil {
					fed += int64(total)
					dw.n = fed
					for range batch {
						ends = append(ends, fed)
					}
				}
			} else if total <= smallBatch {
				if bw != nil {
					pubWriters.put(bw) // quiet again
					bw = nil
				}
				small = small[:0]
				for _, m := range batch {
					small = appendMsg(small, m.Frames)
					ends = append(ends, fed+int64(len(small)))
				}
				fed += int64(len(small))
				pr.written(int64(total))
				for _, m := range batch {
					p.unref(m, m.size())
				}
				if len(small) > 0 {
					_, err = dw.Write(small)
				}
			} else {
				if bw == nil {
					bw = pubWriters.get(dw)
				}
				var handed int64 // bytes handed to bw and not yet accounted for
				for _, m := range batch {
					size := m.size()
					if err == nil {
						var n int
						n, err = writeMsg(bw, m.Frames)
						fed += int64(n)
						if err == nil {
							ends = append(ends, fed)
						}
					}
					p.unref(m, size)
					// Account in steps of the buffer size: often enough for
					// a waiting Send, rarely enough to stay cheap.
					if handed += int64(size); handed >= ioBufferSize {
						pr.written(handed)
						handed = 0
					}
				}
				pr.written(handed)
				if err == nil {
					err = bw.Flush()
				}
			}
			n := len(batch)
			clear(batch)
			if err != nil {
				// A message is delivered once its last byte is with the
				// kernel; the rest of the batch is lost with the connection.
				pr.inFlight = n - len(ends)
				for _, end := range ends {
					if end > dw.n {
						pr.inFlight++
					}
				}
				if isTimeout(err) {
					err = fmt.Errorf("%w: no %d bytes written within %v", ErrSlowConsumer, ioBufferSize, p.cfg.SlowTimeout)
				}
				pr.kill(err)
				return
			}
			if closing {
				// Everything queued before Shutdown is with the kernel.
				if hc, ok := pr.nc.(interface{ CloseWrite() error }); ok && linger {
					// FIN (and on tls:// close_notify) after the data; the
					// reader sees the peer hang up.
					_ = hc.CloseWrite()
					return
				}
				pr.kill(nil)
				return
			}
		}
	}
}

// handBatch gives batch to an inproc Sub on the batch lane, with the
// writer's references to its messages, which the Sub drops when its
// consumer releases them. It waits while the lane is full, at most
// SlowTimeout at a time (without limit while Shutdown waits for this
// subscriber, as deadlineWriter). On error nothing was handed and the
// references are dropped here.
func (pr *peer) handBatch(lane *memConn, batch []*Msg, total int) error {
	if len(batch) == 0 {
		return nil
	}
	p := pr.pub
	b := &inprocBatch{msgs: slices.Clone(batch), bytes: int64(total), pub: p}
	for {
		lane.SetWriteDeadline(time.Now().Add(p.cfg.SlowTimeout))
		err := lane.out.sendBatch(b)
		if err == nil {
			pr.written(int64(total))
			return nil
		}
		if !isTimeout(err) || !pr.patient() {
			for _, m := range batch {
				p.unref(m, m.size())
			}
			pr.written(int64(total))
			return err
		}
	}
}

// patient reports whether a write to pr that makes no progress for
// SlowTimeout may go on waiting: while Shutdown flushes to a subscriber
// it waits for (its ctx bounds that), and while pr is off the live
// stream (offLive).
func (pr *peer) patient() bool { return pr.offLive.Load() || pr.q.lingering() }

// written accounts for n bytes of messages handed to a write buffer: the
// queue shrinks, waking a Send that waits for it.
func (pr *peer) written(n int64) {
	pr.lastWrite.Store(time.Now().UnixNano())
	soft := int64(pr.pub.cfg.QueueBytes)
	before, after := pr.q.written(n)
	if before > soft && after <= soft {
		pr.pub.wake()
	}
	if low := int64(pr.pub.cfg.WritableBytes); pr.pub.cfg.OnWritable != nil && before > low && after <= low {
		pr.pub.cfg.OnWritable(pr.id)
	}
}

// deadlineWriter writes to a connection in pieces of at most ioBufferSize
// bytes, each with its own deadline, so a subscriber is cut only when it
// stops taking data, not when a large message takes long. It counts the
// bytes the connection accepted.
//
// While patient reports true (Shutdown flushes to a subscriber it waits
// for), a deadline that passes is not a failure: the write goes on until
// the subscriber takes the data or Shutdown's ctx ends and Close closes
// the connection. During the drain nothing new is published, so a busy
// subscriber (one repairing a gap, say) slows nobody else down, and
// cutting it would lose it the END it is about to read.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
	patient func() bool
	n       int64
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		if err := w.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
			return total, err
		}
		n, err := w.nc.Write(b[:min(len(b), ioBufferSize)])
		total += n
		w.n += int64(n)
		b = b[n:]
		if err != nil && !(isTimeout(err) && w.patient != nil && w.patient()) {
			return total, err
		}
	}
	return total, nil
}

// readLoop reads subscriptions until the connection fails. It runs on
// the goroutine that reported PeerConnected.
func (pr *peer) readLoop() {
	defer pr.done()
	p := pr.pub
	fr := newFrameReader(pr.nc, peerReadBuffer, peerMaxFrame, peerMaxFrames)
	fr.slabSize = 0
	var frames [][]byte
	for {
		var info msgInfo
		var err error
		frames, info, err = fr.readMsg(frames)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				err = nil // the subscriber hung up
			case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrTooManyFrames):
				p.badInput.Add(1)
				p.rl.Warn("bad-input", "subscriber sent a message over the limits", zap.String("remote", pr.remote), zap.Error(err))
			}
			pr.kill(err)
			return
		}
		if info.cmd {
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

// setSub adds or removes one prefix, enforcing MaxSubscriptions,
// MaxSubscriptionBytes and SubscriptionBudget.
func (pr *peer) setSub(prefix []byte, on bool) {
	cost := int64(len(prefix) + SubscriptionOverhead)
	if !on {
		if pr.subs.remove(prefix) {
			pr.chargeSubs(-cost)
		}
		return
	}
	if !pr.subs.add(prefix) {
		return
	}
	p := pr.pub
	mine, total, ok := pr.chargeSubs(cost)
	switch {
	case !ok:
		return // killed meanwhile
	case pr.subs.len() > p.cfg.MaxSubscriptions:
		pr.tooManySubs(fmt.Errorf("%w: more than %d prefixes", ErrTooManySubscriptions, p.cfg.MaxSubscriptions), p.cfg.MaxSubscriptions)
		return
	case mine > int64(p.cfg.MaxSubscriptionBytes):
		pr.tooManySubs(fmt.Errorf("%w: prefixes take more than %d bytes", ErrTooManySubscriptions, p.cfg.MaxSubscriptionBytes), p.cfg.MaxSubscriptionBytes)
		return
	case total > int64(p.cfg.SubscriptionBudget):
		if !p.makeSubscriptionRoom(pr) {
			return // pr was the one to go
		}
	}
	select {
	case <-pr.gone:
		return
	default:
	}
	p.emit(PeerEvent{Type: PeerSubscribed, Conn: pr.id, Remote: pr.remote, Identity: pr.identity, Prefix: bytes.Clone(prefix)})
}

// chargeSubs adds delta to what the connection's subscriptions take and
// to the Pub's total, and returns both; ok is false once kill released
// them (nothing is charged then).
func (pr *peer) chargeSubs(delta int64) (mine, total int64, ok bool) {
	pr.subMu.Lock()
	defer pr.subMu.Unlock()
	if pr.subsReleased {
		return 0, 0, false
	}
	mine = pr.subBytes.Add(delta)
	return mine, pr.pub.subBytes.Add(delta), true
}

// releaseSubs gives the connection's subscription bytes back to the
// Pub's total, once: called by kill.
func (pr *peer) releaseSubs() {
	pr.subMu.Lock()
	defer pr.subMu.Unlock()
	if !pr.subsReleased {
		pr.subsReleased = true
		pr.pub.subBytes.Add(-pr.subBytes.Load())
	}
}

// tooManySubs closes the connection for a per-connection subscription
// limit.
func (pr *peer) tooManySubs(err error, limit int) {
	if pr.kill(err) {
		pr.pub.tooManySubs.Add(1)
		pr.pub.rl.Warn("too-many-subscriptions", "subscriber disconnected for too many subscriptions", zap.String("remote", pr.remote), zap.Int("limit", limit), zap.Error(err))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writerPool lends bufio.Writers of one size, so that connections hold a
// write buffer only while they write.
type writerPool struct {
	size int
	pool sync.Pool
}

var pubWriters = &writerPool{size: ioBufferSize}

func (wp *writerPool) get(w io.Writer) *bufio.Writer {
	if bw, ok := wp.pool.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, wp.size)
}

// put takes back bw; whatever it still buffers is discarded.
func (wp *writerPool) put(bw *bufio.Writer) {
	bw.Reset(nil)
	wp.pool.Put(bw)
}
