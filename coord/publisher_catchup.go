package coord

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
	"go.uber.org/zap"
)

// Catch-up (SlowCatchUp): each joined data connection is a cursor over
// what was sent. While it keeps up it is on the live stream; when its
// queue passes the wire's QueueBytes (the socket reports it, TakeBehind)
// run moves it to classCatchUp, which no live Send addresses, and from
// then on feeds it from the retained store, in order, as fast as it
// reads: whenever its queue falls to half of QueueBytes (OnWritable) run
// tops it up to QueueBytes again. Its memory is that bound, however far
// behind it is. When its cursor reaches what was sent, it goes back to
// its live class between two Sends, so it sees every record once, in
// order. If END went out meanwhile, it is sent END instead and stays off
// the live stream, which has nothing more.
//
// A record the store no longer holds when the cursor gets there is
// skipped: the subscriber sees the gap in the sequence and repairs it or
// reports it lost, as after any gap.
//
// Everything here runs on run's goroutine (the simulator's pass), like
// every other write to the socket, so the positions it compares are
// exact: sentTopics holds, per topic, the last sequence handed to the
// socket.

// classCatchUp holds the connections fed from the store: no live batch,
// heartbeat or END addresses it.
const classCatchUp wire.Class = 2

// liveClasses are the classes every control message goes to.
var liveClasses = wire.Classes(classData, classMulti)

// sentTopic is one topic as the socket has seen it.
type sentTopic struct {
	name      string
	nameBytes []byte
	last      uint64 // the last sequence handed to the socket
}

// cursor is a data connection fed from the store.
type cursor struct {
	id    wire.ConnID
	class wire.Class // its live class, to go back to
	// next holds, per index of sentTopics, the next sequence to send it;
	// a topic beyond its length was created after the cursor: from 1.
	next []uint64
	// replay: it was asked for (a READY's from), so its batches carry
	// the REPLAY flag, which tells the subscriber the history has begun.
	replay bool
}

func (c *cursor) nextOf(i int) uint64 {
	if i < len(c.next) {
		return c.next[i]
	}
	return 1
}

func (c *cursor) setNext(i int, seq uint64) {
	for len(c.next) <= i {
		c.next = append(c.next, 1)
	}
	c.next[i] = seq
}

// catchUp is run's state of the catch-up policy.
type catchUp struct {
	on      bool  // SlowCatchUp with a store
	target  int64 // bytes a cursor's queue is topped up to: the wire's QueueBytes
	topics  []sentTopic
	index   map[*topicState]int
	cursors []*cursor // by id
	behind  []wire.ConnID
	joins   []catchUpReq // READYs granted a catch-up, for startCatchUps
	// end is the END table once END went out on the live stream (and
	// endFailure the ABORT reason before it): a cursor that reaches the
	// end is sent them.
	end        []envelope.TopicSeq
	endFailure error
	msgs       sync.Pool
	// fedAt is when a cursor last took something (or the first one was
	// made); holding: run holds new batches back because every joined
	// subscriber is catching up (see holdForCursors).
	fedAt   time.Time
	holding bool
}

// noteSent records the sequences of batch m as handed to the socket; run
// calls it before the Send, after which m may be back in the pool.
func (p *Publisher) noteSent(m *outMsg) {
	cu := &p.cu
	for i, ts := range m.topics {
		_, first, n := m.b.Topic(i)
		j, ok := cu.index[ts]
		if !ok {
			j = len(cu.topics)
			cu.index[ts] = j
			cu.topics = append(cu.topics, sentTopic{name: ts.name, nameBytes: ts.nameBytes})
		}
		cu.topics[j].last = first + uint64(n) - 1
	}
}

// detachBehind moves the joined connections the socket reports behind
// off the live stream, each a cursor starting after what it was sent.
func (p *Publisher) detachBehind() {
	cu := &p.cu
	if !cu.on {
		return
	}
	cu.behind = p.pub.TakeBehind(cu.behind[:0])
	for _, id := range cu.behind {
		if _, ok := p.cursorOf(id); ok {
			continue
		}
		class, joined := p.liveClass(id)
		if !joined {
			continue // a stranger stays on the live stream, cut at MaxQueueBytes
		}
		c := &cursor{id: id, class: class, next: make([]uint64, len(cu.topics))}
		for i, t := range cu.topics {
			c.next[i] = t.last + 1
		}
		p.pub.SetClass(id, classCatchUp)
		i, _ := p.cursorOf(id)
		cu.cursors = slices.Insert(cu.cursors, i, c)
		p.catchUps.Add(1)
		p.catchingUp.Store(int64(len(cu.cursors)))
		cu.fedAt = p.now()
	}
}

// startCatchUps feeds each connection whose READY was granted a
// catch-up the history from its from, before the live stream: it is
// taken off the live stream now, between two sends, and everything
// queued for it before comes first. Its batches are flagged REPLAY.
func (p *Publisher) startCatchUps() {
	cu := &p.cu
	for _, r := range cu.joins {
		id := wire.ConnID(r.conn)
		if i, ok := p.cursorOf(id); ok {
			c := cu.cursors[i]
			c.replay = true
			for j := range c.next {
				c.next[j] = min(c.next[j], r.from)
			}
			continue
		}
		class, joined := p.liveClass(id)
		if !joined {
			continue // gone meanwhile
		}
		c := &cursor{id: id, class: class, next: make([]uint64, len(cu.topics)), replay: true}
		for i := range c.next {
			c.next[i] = r.from
		}
		p.pub.SetClass(id, classCatchUp)
		i, _ := p.cursorOf(id)
		cu.cursors = slices.Insert(cu.cursors, i, c)
		p.catchUps.Add(1)
		cu.fedAt = p.now()
	}
	p.catchingUp.Store(int64(len(cu.cursors)))
}

// liveClass returns the class of connection id's form and whether it
// proves a subscriber.
func (p *Publisher) liveClass(id wire.ConnID) (wire.Class, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dc := p.core.conns[connID(id)]
	if dc == nil || dc.subscriber == nil {
		return classData, false
	}
	if dc.multi {
		return classMulti, true
	}
	return classData, true
}

// cursorOf finds connection id's cursor: its index and whether it has
// one (else where it would go).
func (p *Publisher) cursorOf(id wire.ConnID) (int, bool) {
	return slices.BinarySearchFunc(p.cu.cursors, id, func(c *cursor, id wire.ConnID) int {
		switch {
		case c.id < id:
			return -1
		case c.id > id:
			return 1
		}
		return 0
	})
}

// setLiveClass applies a form change: a cursor keeps it for when it goes
// back to the live stream.
func (p *Publisher) setLiveClass(id wire.ConnID, class wire.Class) {
	if i, ok := p.cursorOf(id); ok {
		p.cu.cursors[i].class = class
		return
	}
	p.pub.SetClass(id, class)
}

// dropCursor forgets connection id's cursor (the connection went away).
func (p *Publisher) dropCursor(id wire.ConnID) {
	if i, ok := p.cursorOf(id); ok {
		p.cu.cursors = slices.Delete(p.cu.cursors, i, i+1)
		p.catchingUp.Store(int64(len(p.cu.cursors)))
	}
}

// feedCursors tops every cursor up; those that caught up go back to the
// live stream (or are sent END).
func (p *Publisher) feedCursors() {
	cu := &p.cu
	for i := 0; i < len(cu.cursors); {
		if p.feed(cu.cursors[i]) {
			cu.cursors = slices.Delete(cu.cursors, i, i+1)
			continue
		}
		i++
	}
	p.catchingUp.Store(int64(len(cu.cursors)))
}

// errFull stops a replay into a cursor: its queue is full, or it is gone.
var errFull = errors.New("coord: cursor full")

// feed tops cursor c up to the target, topic after topic in turns of
// feedTurn bytes, and reports whether it is done: caught up (back on the
// live stream, or sent END) or gone.
func (p *Publisher) feed(c *cursor) bool {
	cu := &p.cu
	queued, ok := p.pub.Queued(c.id)
	if !ok {
		return true
	}
	for queued < cu.target {
		progressed := false
		for i := range cu.topics {
			t := &cu.topics[i]
			from := c.nextOf(i)
			if from > t.last {
				continue
			}
			if !p.pub.Subscribed(c.id, t.nameBytes) {
				c.setNext(i, t.last+1)
				continue
			}
			progressed = true
			turn := int64(0)
			gone := false
			err := p.store.replay(p.cfg.Epoch, t.name, from, t.last, func(f envelope.Frames, count int) error {
				h, err := envelope.ParseHeader(f[1])
				if err != nil {
					return err
				}
				m := p.replayMsg(f)
				if c.replay {
					envelope.SetFlags(m.frames[1], envelope.FlagReplay)
				}
				size := int64(len(f[0]) + len(f[1]) + len(f[2]) + 27)
				q, ok := p.pub.Offer(c.id, &m.Msg) // a batch refused is back in the pool
				if !ok {
					gone = true
					return errFull
				}
				c.setNext(i, h.LastSeq()+1)
				cu.fedAt = p.now()
				queued, turn = q, turn+size
				p.caughtUpBytes.Add(uint64(size))
				if queued >= cu.target || turn >= feedTurn {
					return errFull
				}
				return nil
			})
			if gone {
				if _, still := p.pub.Queued(c.id); !still {
					return true
				}
				return false // refused for MaxQueueBytes: try again when it drained
			}
			if err != nil && !errors.Is(err, errFull) {
				p.rl.Warn("catch-up-read", "cannot read the retained store for a subscriber catching up; it sees a gap", zap.Error(err))
			}
			if c.nextOf(i) == from {
				// The store no longer holds from: skip to what it holds,
				// or past the end; the subscriber sees the gap.
				b := p.store.bounds(p.cfg.Epoch, t.name)
				next := t.last + 1
				if b.first > from && b.first <= t.last {
					next = b.first
				}
				c.setNext(i, next)
			}
			if queued >= cu.target {
				return false
			}
		}
		if !progressed {
			return p.caughtUp(c)
		}
	}
	return false
}

// holdForCursors reports whether run should hold new batches back
// because every joined subscriber is catching up: the publisher goes at
// the pace of its fastest subscriber, and with none on the live stream
// that is the fastest cursor. Sent on, the batches would reach nobody
// and only push out of the history the records the cursors are about to
// read. It holds while some cursor took something within the wire's
// SlowTimeout: cursors that all stopped reading set nobody's pace, as a
// live subscriber that stops reading is cut.
func (p *Publisher) holdForCursors(now time.Time) bool {
	cu := &p.cu
	hold := cu.on && len(cu.cursors) > 0 && cu.end == nil &&
		now.Sub(cu.fedAt) < p.slowTimeout() && !p.joinedLive()
	if hold && !cu.holding {
		p.catchUpHolds.Add(1)
	}
	cu.holding = hold
	return hold
}

// joinedLive reports whether some joined subscriber's data connection is
// on the live stream (not a cursor).
func (p *Publisher) joinedLive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, dc := range p.core.conns {
		if dc.subscriber == nil {
			continue
		}
		if _, cursor := p.cursorOf(wire.ConnID(id)); !cursor {
			return true
		}
	}
	return false
}

// slowTimeout is the wire's SlowTimeout with its default.
func (p *Publisher) slowTimeout() time.Duration {
	if t := p.cfg.Wire.SlowTimeout; t > 0 {
		return t
	}
	return wire.DefaultPubConfig().SlowTimeout
}

// feedTurn is what one topic is fed before the next topic's turn.
const feedTurn = 256 << 10

// caughtUp puts a cursor that reached what was sent back on the live
// stream, or, after END, sends it END. It reports true (done).
func (p *Publisher) caughtUp(c *cursor) bool {
	cu := &p.cu
	if cu.end == nil {
		p.pub.SetClass(c.id, c.class)
		p.caughtUpMerged.Add(1)
		return true
	}
	if cu.endFailure != nil {
		p.pub.Offer(c.id, &wire.Msg{Frames: p.control(envelope.KindAbort, []byte(cu.endFailure.Error()))})
	}
	p.pub.Offer(c.id, &wire.Msg{Frames: p.control(envelope.KindEnd, envelope.AppendTable(nil, cu.end))})
	p.controls.Add(1)
	return true
}

// replayBatch is a copy of a retained batch on its way to one cursor.
type replayBatch struct {
	wire.Msg
	buf    []byte
	frames [3][]byte
}

func (p *Publisher) replayMsg(f envelope.Frames) *replayBatch {
	m, _ := p.cu.msgs.Get().(*replayBatch)
	if m == nil {
		m = &replayBatch{}
		m.OnFree = func(*wire.Msg) { p.cu.msgs.Put(m) }
	}
	m.buf = append(append(append(m.buf[:0], f[0]...), f[1]...), f[2]...)
	a, b := len(f[0]), len(f[0])+len(f[1])
	m.frames = [3][]byte{m.buf[:a:a], m.buf[a:b:b], m.buf[b:]}
	m.Frames = m.frames[:]
	return m
}
