package coord

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/syncmq/syncmq/internal/sim"
	"github.com/syncmq/syncmq/internal/wire"
)

// simConn is one data connection, PUB to SUB. What TCP guarantees within
// a connection (no loss, order) holds: messages leave the publisher's
// queue in order, travel with the network's delay into the subscriber's
// buffers (at most sockBuf bytes in flight and unread), and the
// subscriber reads them in order at its own pace. The publisher cuts a
// connection whose queue would pass MaxQueueBytes, or that made no write
// progress for SlowTimeout, as the real PUB socket does.
type simConn struct {
	w        *world
	id       wire.ConnID
	pub      *simPub
	pubInc   int // the publisher incarnation it is a connection of
	sub      *simSub
	subRun   int
	endpoint string
	prefixes [][]byte
	class    wire.Class

	pq        []simMsg // queued at the publisher, not yet written
	pqBytes   int
	lastWrite time.Time
	nq        []simMsg // written: in flight or unread in the subscriber's buffers
	nqBytes   int
	lastArr   time.Time

	pubOpen, subOpen bool // each side still has it
	fin              bool // the publisher closed it: the subscriber reads nq, then EOF
	behind           bool // cut as a slow consumer
	behindMark       bool // its queue passed BehindBytes since TakeBehind took it
	slowCheck        *sim.Timer
}

type simMsg struct {
	frames [][]byte
	size   int
	arrive time.Time
}

func (c *simConn) String() string {
	return fmt.Sprintf("conn %d %s->%s", c.id, c.pub.name, c.sub.name)
}

// matches reports whether the connection's subscriptions take topic.
func (c *simConn) matches(topic []byte) bool {
	for _, p := range c.prefixes {
		if len(topic) >= len(p) && string(topic[:len(p)]) == string(p) {
			return true
		}
	}
	return false
}

// enqueue queues a copy of m's frames at the publisher; false if that
// cut the connection.
func (c *simConn) enqueue(m *wire.Msg) bool {
	if !c.pubOpen {
		return false
	}
	frames := make([][]byte, len(m.Frames))
	size := 0
	for i, f := range m.Frames {
		frames[i] = append([]byte(nil), f...)
		size += len(f) + 9
	}
	if c.pqBytes+size > c.w.params.maxQueueBytes && c.pqBytes > 0 {
		c.cut(true, "queue would exceed MaxQueueBytes")
		return false
	}
	if len(c.pq) == 0 {
		c.lastWrite = c.w.sim.Now() // the clock of SlowTimeout starts with a waiting write
	}
	c.pq = append(c.pq, simMsg{frames: frames, size: size})
	c.pqBytes += size
	if b := c.pub.sock.behindBytes(); b > 0 && c.pqBytes > b {
		c.behindMark = true
	}
	c.pump()
	return true
}

// offer queues a copy of m unless that takes a non-empty queue above
// MaxQueueBytes, without cutting the connection (Pub.Offer).
func (c *simConn) offer(m *wire.Msg) bool {
	size := 0
	for _, f := range m.Frames {
		size += len(f) + 9
	}
	if !c.pubOpen || (c.pqBytes > 0 && c.pqBytes+size > c.w.params.maxQueueBytes) {
		return false
	}
	return c.enqueue(m)
}

// pump writes queued messages while the subscriber's buffers have room
// and the network carries them.
func (c *simConn) pump() {
	w := c.w
	if !c.pubOpen || !c.subOpen || !w.reachable(c.pub.name, c.sub.name) {
		c.armSlowCheck()
		return
	}
	moved, before := false, c.pqBytes
	for len(c.pq) > 0 && (c.nqBytes == 0 || c.nqBytes+c.pq[0].size <= w.params.sockBuf) {
		m := c.pq[0]
		c.pq[0] = simMsg{}
		c.pq = c.pq[1:]
		c.pqBytes -= m.size
		m.arrive = w.sim.Now().Add(w.delay())
		if m.arrive.Before(c.lastArr) {
			m.arrive = c.lastArr
		}
		c.lastArr = m.arrive
		c.nq = append(c.nq, m)
		c.nqBytes += m.size
		moved = true
	}
	if moved {
		c.lastWrite = w.sim.Now()
		c.sub.wakeReader(c.nq[len(c.nq)-1].arrive)
		// OnWritable: a cursor with room is fed on the next pass.
		if low := c.pub.sock.writableBytes(); low > 0 && before > low && c.pqBytes <= low && c.pubInc == c.pub.inc {
			c.pub.kickSoon()
		}
	}
	c.armSlowCheck()
}

// armSlowCheck cuts the connection if the queue is still waiting
// SlowTimeout after its last write progress.
func (c *simConn) armSlowCheck() {
	if len(c.pq) == 0 || !c.pubOpen || c.slowCheck != nil {
		return
	}
	at := c.lastWrite.Add(c.w.params.slowTimeout)
	c.slowCheck = c.w.sim.At(at, "", func() {
		c.slowCheck = nil
		if len(c.pq) > 0 && c.pubOpen && !c.w.sim.Now().Before(c.lastWrite.Add(c.w.params.slowTimeout)) {
			c.cut(true, "no write progress for SlowTimeout")
			return
		}
		c.armSlowCheck()
	})
}

// cut closes the connection from the publisher's side: what is queued is
// dropped, what was written still reaches the subscriber, then EOF.
func (c *simConn) cut(slow bool, why string) {
	if !c.pubOpen {
		return
	}
	c.w.tracef("%v closed by the publisher: %s", c, why)
	c.pubOpen, c.fin = false, true
	c.behind = c.behind || slow
	c.pq, c.pqBytes = nil, 0
	c.slowCheck.Stop()
	c.pub.connGone(c, slow)
	c.sub.wakeReader(c.lastArr)
}

// reset breaks the connection on both sides at once, everything in
// flight lost (a network reset, or a crash of both ends' view).
func (c *simConn) reset(why string) {
	c.w.tracef("%v reset: %s", c, why)
	c.nq, c.nqBytes = nil, 0
	c.fin = true
	if c.pubOpen {
		c.pubOpen = false
		c.pq, c.pqBytes = nil, 0
		c.slowCheck.Stop()
		c.pub.connGone(c, false)
	}
	c.sub.wakeReader(c.w.sim.Now())
}

// subClose closes the connection from the subscriber's side (its idle
// timeout, its crash): the publisher learns when the network lets it.
func (c *simConn) subClose(why string) {
	if !c.subOpen {
		return
	}
	c.w.tracef("%v closed by the subscriber: %s", c, why)
	c.subOpen = false
	c.nq, c.nqBytes = nil, 0
	c.pub.notifyClosed(c)
}

// simPubSocket is the PUB socket of one publisher incarnation.
type simPubSocket struct {
	p      *simPub
	inc    int
	conns  []*simConn // by id
	closed bool
}

var _ pubSocket = (*simPubSocket)(nil)

func (s *simPubSocket) Send(_ context.Context, m *wire.Msg) error {
	if s.closed {
		return wire.ErrClosed
	}
	topic := m.Frames[0]
	for _, c := range slices.Clone(s.conns) {
		if c.pubOpen && (m.To == 0 || m.To&(1<<c.class) != 0) && c.matches(topic) {
			c.enqueue(m)
		}
	}
	return nil
}

func (s *simPubSocket) SendTo(_ context.Context, id wire.ConnID, m *wire.Msg) (bool, error) {
	if s.closed {
		return false, wire.ErrClosed
	}
	c := s.conn(id)
	if c == nil || !c.pubOpen || !c.matches(m.Frames[0]) {
		return false, nil
	}
	return c.enqueue(m), nil
}

func (s *simPubSocket) Offer(id wire.ConnID, m *wire.Msg) (int64, bool) {
	c := s.conn(id)
	if s.closed || c == nil || !c.matches(m.Frames[0]) || !c.offer(m) {
		return 0, false
	}
	return int64(c.pqBytes), true
}

func (s *simPubSocket) Queued(id wire.ConnID) (int64, bool) {
	c := s.conn(id)
	if c == nil || !c.pubOpen {
		return 0, false
	}
	return int64(c.pqBytes), true
}

func (s *simPubSocket) Subscribed(id wire.ConnID, topic []byte) bool {
	c := s.conn(id)
	return c != nil && c.pubOpen && c.matches(topic)
}

func (s *simPubSocket) TakeBehind(dst []wire.ConnID) []wire.ConnID {
	for _, c := range s.conns {
		if c.behindMark {
			c.behindMark = false
			dst = append(dst, c.id)
		}
	}
	return dst
}

// behindBytes and writableBytes are the catch-up thresholds the
// publisher configured its socket with (BehindBytes, WritableBytes).
func (s *simPubSocket) behindBytes() int {
	if s.p.p == nil || !s.p.p.cu.on {
		return 0
	}
	return 2 * int(s.p.p.cu.target)
}

func (s *simPubSocket) writableBytes() int { return s.behindBytes() / 4 }

func (s *simPubSocket) conn(id wire.ConnID) *simConn {
	i, ok := slices.BinarySearchFunc(s.conns, id, func(c *simConn, id wire.ConnID) int { return int(c.id) - int(id) })
	if !ok {
		return nil
	}
	return s.conns[i]
}

func (s *simPubSocket) Kick(id wire.ConnID, err error) {
	if c := s.conn(id); c != nil {
		c.cut(false, fmt.Sprint("kicked: ", err))
	}
}

func (s *simPubSocket) SetClass(id wire.ConnID, cl wire.Class) bool {
	c := s.conn(id)
	if c == nil {
		return false
	}
	c.class = cl
	return true
}

func (s *simPubSocket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	for _, c := range slices.Clone(s.conns) {
		c.cut(false, "socket closed")
	}
	return nil
}

func (s *simPubSocket) remove(c *simConn) {
	s.conns = slices.DeleteFunc(s.conns, func(x *simConn) bool { return x == c })
}

func (s *simPubSocket) Endpoint() string { return s.p.endpoints().Pub }
func (s *simPubSocket) Addr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5561} }
func (s *simPubSocket) Stats() wire.PubStats {
	return wire.PubStats{Peers: len(s.conns)}
}

// simEndpoint stands for the sync and recovery servers: the simulator
// calls their handlers itself.
type simEndpoint struct{ endpoint string }

func (e simEndpoint) Endpoint() string                   { return e.endpoint }
func (e simEndpoint) Addr() net.Addr                     { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (e simEndpoint) Stats() wire.ServerStats            { return wire.ServerStats{} }
func (e simEndpoint) Shutdown(ctx context.Context) error { return nil }
func (e simEndpoint) Close() error                       { return nil }

// errUnreachable is what a request to a node that is down or cut off
// fails with, after the client's timeout.
var errUnreachable = errors.New("sim: unreachable")
