package wire

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/internal/ratelog"
	"go.uber.org/zap"
)

// PubStats is a snapshot of a Pub's counters.
type PubStats struct {
	Peers int
	// Sent counts messages addressed to subscribers (queued, or refused
	// for MaxQueueBytes), summed over subscribers.
	Sent uint64
	// SlowConsumers counts subscribers disconnected as slow consumers.
	SlowConsumers uint64
	// Dropped counts messages addressed to slow consumers that never
	// reached their kernel buffers.
	Dropped uint64
	// QueuedBytes is what the queues hold now, each message counted once.
	QueuedBytes int64
	// Waits counts Sends that found every matching queue above QueueBytes
	// and waited.
	Waits uint64
	// HandshakeFailed counts connections that failed or timed out in the
	// ZMTP handshake.
	HandshakeFailed uint64
	// TLSFailed counts connections to a tls:// endpoint whose TLS
	// handshake failed or timed out: no client certificate, one the CA
	// pool does not verify, or no TLS at all.
	TLSFailed uint64
	// RefusedIdentity counts connections closed because Allow refused
	// their identity.
	RefusedIdentity uint64
	// BadInput counts connections closed for a message over the limits.
	BadInput uint64
	// TooManySubscriptions counts connections closed for MaxSubscriptions
	// or MaxSubscriptionBytes.
	TooManySubscriptions uint64
	// SubscriptionBytes is what the subscriptions of all connections
	// take now, as SubscriptionBudget counts them.
	SubscriptionBytes int64
	// SubscriptionEvicted counts connections closed to keep the
	// subscriptions of all connections within SubscriptionBudget.
	SubscriptionEvicted uint64
	// Kicked counts connections closed by Kick.
	Kicked uint64
	// Evicted counts connections closed to make room for a new one at
	// MaxConnsPerIP or MaxPeers (see PubConfig.Evictable).
	Evicted uint64
	// Pending is the number of handshakes in progress now.
	Pending int
	// EvictedPending counts handshakes closed to make room for a newer
	// connection: their address had MaxPendingPerIP handshakes in
	// progress, or the Pub MaxPending and their address the most.
	EvictedPending uint64
	// Refused counts connections closed on arrival, the sum of the next two.
	Refused uint64
	// RefusedPeers: MaxPeers subscribers were connected.
	RefusedPeers uint64
	// RefusedPerIP: the source address had MaxConnsPerIP connections.
	RefusedPerIP uint64
}

// Pub is a ZeroMQ PUB socket that binds one TCP endpoint. All methods are
// safe for concurrent use.
type Pub struct {
	cfg       PubConfig
	ln        net.Listener
	scheme    string
	tlsServer *tls.Config // tls:// only: the TLS configuration, with Allow
	g         gogroup.Group
	ips       *ipLimiter
	rl        *ratelog.Logger
	nextID    atomic.Uint64

	mu      sync.Mutex
	peers   map[ConnID]*peer
	pending *pendingTable           // connections still in handshake, closed by Close
	snap    atomic.Pointer[[]*peer] // copy-on-write view for Send

	stopOnce  sync.Once
	stopping  chan struct{} // closed by Shutdown or Close: no new peers or Sends
	shutOnce  sync.Once
	shutErr   error
	closeOnce sync.Once
	closed    chan struct{}

	// Sends waiting for a queue to drop to QueueBytes wait on waitCh,
	// which wake closes and replaces.
	waiters atomic.Int32
	waitMu  sync.Mutex
	waitCh  chan struct{}

	subBytes atomic.Int64 // what every connection's subscriptions take (SubscriptionBudget)
	behindN  atomic.Int32 // connections flagged behind (BehindBytes) and not yet taken

	held    atomic.Int64  // bytes of distinct messages referenced by queues or Sends
	sendSeq atomic.Uint64 // numbers Sends, so queues know how far behind they are
	evictMu sync.Mutex

	sent, slow, dropped, waits, hsFailed, badInput, tooManySubs, kicked, evicted atomic.Uint64
	evictedPending, refusedPeers, refusedPerIP, tlsFailed, refusedID, subEvicted atomic.Uint64
}

// Listen binds endpoint ("tcp://*:5561", "tcp://127.0.0.1:0", or
// "tls://*:5561" with cfg.TLS) and starts accepting subscribers.
func Listen(endpoint string, cfg PubConfig) (*Pub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, scheme, err := listen(endpoint, cfg.TLS)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Pub{
		cfg:      cfg,
		ln:       ln,
		scheme:   scheme,
		ips:      newIPLimiter(cfg.MaxConnsPerIP),
		rl:       ratelog.New(cfg.Logger, 0),
		peers:    make(map[ConnID]*peer),
		pending:  newPendingTable(cfg.MaxPending, cfg.MaxPendingPerIP),
		stopping: make(chan struct{}),
		closed:   make(chan struct{}),
		waitCh:   make(chan struct{}),
	}
	if cfg.TLS != nil {
		p.tlsServer = cfg.TLS.server
		if cfg.Allow != nil {
			p.tlsServer = cfg.TLS.allowing(cfg.Allow)
		}
	}
	empty := []*peer{}
	p.snap.Store(&empty)
	p.g.Go(p.acceptLoop)
	return p, nil
}

// Addr returns the bound address, with the port the OS chose.
func (p *Pub) Addr() net.Addr { return p.ln.Addr() }

// Endpoint returns "tcp://host:port" (or "tls://host:port") for the
// bound address, for dialing.
func (p *Pub) Endpoint() string { return endpointOf(p.scheme, p.ln) }

func (p *Pub) acceptLoop() { acceptLoop(p.ln, p.closed, p.admit) }

// admit starts the handshake of a new connection. A handshake is never
// refused for the handshakes in progress: the pending table makes room by
// closing the oldest of the new connection's address, or of the address
// holding the most (pendingTable). The connection is refused only when
// its address has MaxConnsPerIP connections (handshaking or connected)
// and none of its connected subscribers may be evicted.
func (p *Pub) admit(nc net.Conn) bool {
	ip := sourceOf(nc)
	if !p.ips.acquire(ip) && !(p.evictFor(nc, ip, true) && p.ips.acquire(ip)) {
		p.refuse(nc, &p.refusedPerIP, "refused-per-ip", "connection refused: too many connections from its address", p.cfg.MaxConnsPerIP)
		return true
	}
	pc := &pendingConn{nc: nc, ip: ip, id: ConnID(p.nextID.Add(1))}
	p.mu.Lock()
	victim := p.pending.add(pc)
	if victim != nil {
		p.ips.release(victim.ip)
		// Counted with the table's change, under p.mu: Stats never shows
		// the handshake gone from Pending and not yet in EvictedPending,
		// even after the new connection has joined.
		p.evictedPending.Add(1)
	}
	ok := p.g.Go(func() { p.open(pc) })
	if !ok {
		p.pending.remove(pc)
	}
	p.mu.Unlock()
	if victim != nil {
		p.closePending(victim, nc)
	}
	if !ok {
		p.ips.release(ip)
		nc.Close()
	}
	return ok
}

// closePending closes a handshake evicted to make room for nc.
func (p *Pub) closePending(victim *pendingConn, nc net.Conn) {
	victim.nc.Close()
	p.rl.Warn("evicted-pending", "handshake in progress closed to make room for a new connection",
		zap.Stringer("remote", victim.nc.RemoteAddr()), zap.Stringer("new", nc.RemoteAddr()),
		zap.Int("max_pending_per_ip", p.cfg.MaxPendingPerIP), zap.Int("max_pending", p.cfg.MaxPending))
}

// evictFor makes room for nc at MaxConnsPerIP (sameIP: among the
// connections from ip) or MaxPeers: it closes the connected subscriber
// that connected first among those PubConfig.Evictable allows, and
// reports whether it found one. Its place is free when evictFor returns.
// It must be called without p.mu, since Evictable may take the
// application's locks.
func (p *Pub) evictFor(nc net.Conn, ip source, sameIP bool) bool {
	if p.cfg.Evictable == nil {
		return false
	}
	p.mu.Lock()
	cands := make([]*peer, 0, len(p.peers))
	for _, pr := range p.peers {
		if !sameIP || pr.ip == ip {
			cands = append(cands, pr)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(cands, func(a, b *peer) int { return cmp.Compare(a.id, b.id) })
	for _, pr := range cands {
		if !p.cfg.Evictable(pr.id) {
			continue
		}
		if pr.kill(fmt.Errorf("%w: to make room for %s", ErrEvicted, nc.RemoteAddr())) {
			p.evicted.Add(1)
			p.rl.Warn("evicted", "subscriber connection closed to make room for a new one", zap.String("remote", pr.remote),
				zap.Stringer("new", nc.RemoteAddr()), zap.Int("max_conns_per_ip", p.cfg.MaxConnsPerIP), zap.Int("max_peers", p.cfg.MaxPeers))
			return true
		}
	}
	return false
}

func (p *Pub) refuse(nc net.Conn, counter *atomic.Uint64, key, msg string, limit int) {
	counter.Add(1)
	p.rl.Warn(key, msg, zap.Stringer("remote", nc.RemoteAddr()), zap.Int("limit", limit))
	nc.Close()
}

// open handshakes a new connection off the accept loop (TLS first on a
// tls:// endpoint, then ZMTP), registers it, and then reads its
// subscriptions until it ends.
func (p *Pub) open(pc *pendingConn) {
	nc, ip, id := pc.nc, pc.ip, pc.id
	if c, ok := nc.(interface{ SetWriteBuffer(int) error }); ok && p.cfg.SendBuffer > 0 {
		_ = c.SetWriteBuffer(p.cfg.SendBuffer) // best effort: the OS may clamp it (tcp:// and ipc://)
	}
	deadline := time.Now().Add(p.cfg.HandshakeTimeout)
	conn, identity, err := p.secure(nc, deadline)
	tlsErr := err
	if err == nil {
		var peerType zmq4.SocketType
		peerType, err = handshake(conn, zmq4.Pub, p.cfg.Security, true, time.Until(deadline))
		if err == nil && !zmq4.Pub.IsCompatible(peerType) {
			err = fmt.Errorf("wire: PUB does not talk to %q", peerType)
		}
	}
	p.mu.Lock()
	live := p.pending.remove(pc)
	p.mu.Unlock()
	if !live {
		// Evicted: counted, and its place released, by the eviction.
		nc.Close()
		return
	}
	switch {
	case tlsErr != nil:
		p.tlsRefused(nc, tlsErr)
	case err != nil:
		p.hsFailed.Add(1)
		p.rl.Warn("handshake", "subscriber handshake failed", zap.Stringer("remote", nc.RemoteAddr()), zap.String("identity", identity), zap.Error(err))
	case p.cfg.TLS == nil && p.cfg.Allow != nil && !p.cfg.Allow(identity):
		p.refusedID.Add(1)
		p.rl.Warn("refused-identity", "connection refused: identity not allowed", zap.Stringer("remote", nc.RemoteAddr()), zap.String("identity", identity))
		err = errNotAllowed
	}
	if err != nil {
		nc.Close()
		p.ips.release(ip)
		return
	}
	pr := newPeer(p, id, conn, ip, identity)
	p.mu.Lock()
	select {
	case <-p.stopping:
		p.mu.Unlock()
		conn.Close()
		p.ips.release(ip)
		return
	default:
	}
	if len(p.peers) >= p.cfg.MaxPeers {
		p.mu.Unlock()
		evicted := p.evictFor(nc, source{}, false)
		p.mu.Lock()
		if p.isStopping() {
			p.mu.Unlock()
			conn.Close()
			p.ips.release(ip)
			return
		}
		if !evicted || len(p.peers) >= p.cfg.MaxPeers {
			p.mu.Unlock()
			p.ips.release(ip)
			p.refuse(conn, &p.refusedPeers, "refused-peers", "connection refused: too many subscribers", p.cfg.MaxPeers)
			return
		}
	}
	p.peers[id] = pr
	p.publishSnapLocked()
	// Start the writer under the lock so Close, which takes it, sees it.
	p.g.Go(pr.writeLoop)
	p.mu.Unlock()
	p.emit(PeerEvent{Type: PeerConnected, Conn: id, Remote: pr.remote, Identity: identity})
	pr.readLoop()
}

// secure runs the TLS handshake on a tls:// endpoint, until deadline,
// and returns the connection to speak ZMTP on and the peer's identity; on
// tcp:// it returns nc and no identity.
func (p *Pub) secure(nc net.Conn, deadline time.Time) (net.Conn, string, error) {
	if p.cfg.TLS == nil {
		return nc, "", nil
	}
	return p.cfg.TLS.accept(nc, p.tlsServer, deadline)
}

// tlsRefused counts and logs a failed TLS handshake: an identity Allow
// refused, or any other failure.
func (p *Pub) tlsRefused(nc net.Conn, err error) {
	var refused *notAllowedError
	if errors.As(err, &refused) {
		p.refusedID.Add(1)
		p.rl.Warn("refused-identity", "connection refused: identity not allowed", zap.Stringer("remote", nc.RemoteAddr()), zap.String("identity", refused.identity))
		return
	}
	p.tlsFailed.Add(1)
	p.rl.Warn("tls", "subscriber TLS handshake failed", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
}

func (p *Pub) publishSnapLocked() {
	s := make([]*peer, 0, len(p.peers))
	for _, pr := range p.peers {
		s = append(s, pr)
	}
	p.snap.Store(&s)
}

// remove takes pr out of the set Send delivers to, and releases whatever
// waited on it.
func (p *Pub) remove(pr *peer) {
	p.mu.Lock()
	if _, ok := p.peers[pr.id]; ok {
		delete(p.peers, pr.id)
		p.publishSnapLocked()
		if pr.behind.Swap(false) {
			p.behindN.Add(-1)
		}
		p.ips.release(pr.ip)
	}
	p.mu.Unlock()
	p.wake()
}

func (p *Pub) emit(ev PeerEvent) {
	if p.cfg.OnEvent != nil {
		p.cfg.OnEvent(ev)
	}
}

// ref takes the caller's reference to m, counting its bytes as held when
// it is the first.
func (p *Pub) ref(m *Msg, size int) {
	if m.retain() {
		p.held.Add(int64(size))
	}
}

// unref drops a reference taken by ref or a queue; size is m.size(),
// taken before the release since m belongs to its owner after.
func (p *Pub) unref(m *Msg, size int) {
	if m.release() {
		// Crossing lagBytes downward releases Sends held by backpressure.
		if after := p.held.Add(-int64(size)); after <= p.lagBytes() && after+int64(size) > p.lagBytes() {
			p.wake()
		}
	}
}

func topicOf(m *Msg) []byte {
	if len(m.Frames) > 0 {
		return m.Frames[0]
	}
	return nil
}

// Send queues m for every connection whose subscriptions match frame 0,
// without waiting for any one of them. Then, to pace the caller to the
// fastest matching subscriber, it waits while every matching connection
// has more than QueueBytes queued; a connection that is slower than the
// others falls behind alone, until MaxQueueBytes or SlowTimeout cuts it.
// The Pub keeps m until every connection wrote it (see Msg).
//
// Send returns nil, or ctx.Err() or ErrClosed if the wait was cut short
// (m is queued nonetheless), or ErrClosed at once after Shutdown or Close
// began. It reports no per-subscriber failure; those arrive as PeerEvents.
func (p *Pub) Send(ctx context.Context, m *Msg) error {
	if p.isStopping() {
		return ErrClosed
	}
	topic, size := topicOf(m), m.size()
	p.ref(m, size)
	defer p.unref(m, size)
	seq := p.sendSeq.Add(1)
	matched, room := false, false
	for _, pr := range *p.snap.Load() {
		if !m.To.has(pr.Class()) || !pr.subs.match(topic) {
			continue
		}
		matched = true
		if p.queue(pr, m, seq, size) {
			room = true
		}
	}
	if p.held.Load() > int64(p.cfg.MaxQueueBytes) {
		p.evict()
	}
	switch p.cfg.Pace {
	case PaceFastest:
		if room || !matched {
			return nil
		}
	case PaceSlowest:
		if p.paced(topic, m.To, nil) {
			return nil
		}
	default:
		if (room || !matched) && !p.lagging() {
			return nil
		}
	}
	p.waits.Add(1)
	return p.pace(ctx, topic, m.To, nil)
}

// TakeBehind appends to dst the connections whose queue passed
// BehindBytes since the last call, and clears their mark. It is cheap
// when there are none. A connection is marked again when a later message
// takes it above BehindBytes again. A connection reported is not cut by
// SlowTimeout until a live Send queues for it again (see Offer).
func (p *Pub) TakeBehind(dst []ConnID) []ConnID {
	if p.behindN.Load() == 0 {
		return dst
	}
	for _, pr := range *p.snap.Load() {
		if pr.behind.Swap(false) {
			p.behindN.Add(-1)
			pr.offLive.Store(true)
			dst = append(dst, pr.id)
		}
	}
	return dst
}

// markBehind flags pr for TakeBehind when its queue holds more than
// BehindBytes.
func (p *Pub) markBehind(pr *peer, queued int64) {
	if p.cfg.BehindBytes > 0 && queued > int64(p.cfg.BehindBytes) && !pr.behind.Swap(true) {
		p.behindN.Add(1)
	}
}

// Offer queues m for connection id alone if its subscriptions match
// frame 0, without waiting and without cutting it: a message that would
// take its queue above MaxQueueBytes is refused. It returns the bytes
// queued afterwards and whether m was queued; false also if the
// connection is gone or does not subscribe to the topic. It is how an
// application feeds a connection it moved off the live stream at the
// pace the connection reads (see BehindBytes and OnWritable). Until a
// live Send queues for it again, a write to it that makes no progress
// does not cut it (SlowTimeout), nor one TakeBehind reported: it holds
// no more than it was sent, and nobody waits for it.
func (p *Pub) Offer(id ConnID, m *Msg) (int64, bool) {
	if p.isStopping() {
		return 0, false
	}
	p.mu.Lock()
	pr := p.peers[id]
	p.mu.Unlock()
	if pr == nil || !pr.subs.match(topicOf(m)) {
		return 0, false
	}
	size := m.size()
	p.ref(m, size)
	defer p.unref(m, size)
	b, res := pr.q.push(m, p.sendSeq.Add(1), size, p.cfg.MaxQueueBytes)
	if res != pushed {
		return b, false
	}
	if !pr.offLive.Load() {
		pr.offLive.Store(true)
	}
	p.sent.Add(1)
	return b, true
}

// Queued returns the bytes queued for connection id, and whether it is
// connected.
func (p *Pub) Queued(id ConnID) (int64, bool) {
	p.mu.Lock()
	pr := p.peers[id]
	p.mu.Unlock()
	if pr == nil {
		return 0, false
	}
	return pr.q.queued(), true
}

// Subscribed reports whether connection id is connected and subscribes
// to topic.
func (p *Pub) Subscribed(id ConnID, topic []byte) bool {
	p.mu.Lock()
	pr := p.peers[id]
	p.mu.Unlock()
	return pr != nil && pr.subs.match(topic)
}

// lagBytes is the total of queued bytes above which Send applies
// backpressure for a subscriber that is behind but still reading: half of
// MaxQueueBytes. Such a subscriber, slower than the others, then slows
// the publisher to its pace instead of being cut at MaxQueueBytes and
// losing what the publisher no longer retains. A subscriber that stopped
// reading (no write progress for progressWindow) is no reason to wait,
// nor is a connection Evictable lets go (one that never joined): those
// fall behind alone, as before, until MaxQueueBytes or SlowTimeout cuts
// them, so they cannot hold the healthy subscribers back.
func (p *Pub) lagBytes() int64 { return int64(p.cfg.MaxQueueBytes) / 2 }

// progressWindow is how recently a connection must have written for its
// lag to hold Send back.
func (p *Pub) progressWindow() time.Duration { return min(p.cfg.SlowTimeout, 50*time.Millisecond) }

// lagging reports whether Send should wait for a subscriber that is
// behind and still reading, while the Pub holds more than lagBytes.
func (p *Pub) lagging() bool {
	if p.held.Load() <= p.lagBytes() {
		return false
	}
	recent := time.Now().Add(-p.progressWindow()).UnixNano()
	for _, pr := range *p.snap.Load() {
		b, _, waiting := pr.q.behind()
		if b > 2*int64(p.cfg.QueueBytes) && waiting && pr.lastWrite.Load() >= recent &&
			(p.cfg.Evictable == nil || !p.cfg.Evictable(pr.id)) {
			return true
		}
	}
	return false
}

// SendTo queues m for connection id alone, and only if its subscriptions
// match frame 0, so a reply to a subscription never overtakes it. It
// reports whether m was queued: false if the connection is gone, not
// (yet) subscribed, or was cut because m took it above MaxQueueBytes. It
// then waits while that connection has more than QueueBytes queued; an
// error says the wait was cut short (ctx.Err() or ErrClosed).
func (p *Pub) SendTo(ctx context.Context, id ConnID, m *Msg) (bool, error) {
	if p.isStopping() {
		return false, ErrClosed
	}
	p.mu.Lock()
	pr := p.peers[id]
	p.mu.Unlock()
	topic := topicOf(m)
	if pr == nil || !pr.subs.match(topic) {
		return false, nil
	}
	size := m.size()
	p.ref(m, size)
	defer p.unref(m, size)
	b, res := pr.q.push(m, p.sendSeq.Add(1), size, p.cfg.MaxQueueBytes)
	switch res {
	case pushOver:
		p.sent.Add(1)
		pr.kill(fmt.Errorf("%w: queue would exceed MaxQueueBytes (%d)", ErrSlowConsumer, p.cfg.MaxQueueBytes))
		return false, nil
	case pushGone:
		return false, nil
	}
	p.sent.Add(1)
	if p.held.Load() > int64(p.cfg.MaxQueueBytes) {
		p.evict()
	}
	if b <= int64(p.cfg.QueueBytes) {
		return true, nil
	}
	p.waits.Add(1)
	return true, p.pace(ctx, nil, 0, pr)
}

// queue offers m to pr and reports whether pr's queue is within
// QueueBytes afterwards. A queue that m would take above MaxQueueBytes
// cuts the connection.
func (p *Pub) queue(pr *peer, m *Msg, seq uint64, size int) bool {
	b, res := pr.q.push(m, seq, size, p.cfg.MaxQueueBytes)
	switch res {
	case pushed:
		if pr.offLive.Load() {
			pr.offLive.Store(false) // back on the live stream
		}
		p.sent.Add(1)
		p.markBehind(pr, b)
		return b <= int64(p.cfg.QueueBytes)
	case pushOver:
		p.sent.Add(1) // and dropped: the queue counts it
		pr.kill(fmt.Errorf("%w: queue would exceed MaxQueueBytes (%d)", ErrSlowConsumer, p.cfg.MaxQueueBytes))
	}
	return false
}

// evict enforces MaxQueueBytes on the Pub as a whole: while the queues
// hold more, it cuts the connection furthest behind, the one whose oldest
// unwritten message is the oldest, among those more than 2 × QueueBytes
// behind with messages waiting behind the batch their writer is writing
// (one huge message alone is not a reason). A connection that paces Send
// is never that far behind; and a reader of many topics, whose queue is
// long because its traffic is, is not taken for the subscriber of one
// topic that stopped reading long ago.
func (p *Pub) evict() {
	if !p.evictMu.TryLock() {
		return // another Send is at it
	}
	defer p.evictMu.Unlock()
	for p.held.Load() > int64(p.cfg.MaxQueueBytes) {
		var victim *peer
		var victimBytes int64
		var oldest uint64
		for _, pr := range *p.snap.Load() {
			b, first, waiting := pr.q.behind()
			if b > 2*int64(p.cfg.QueueBytes) && waiting && (victim == nil || first < oldest) {
				victim, victimBytes, oldest = pr, b, first
			}
		}
		if victim == nil || !victim.kill(fmt.Errorf("%w: %d bytes behind while the publisher holds more than MaxQueueBytes (%d)", ErrSlowConsumer, victimBytes, p.cfg.MaxQueueBytes)) {
			return
		}
	}
}

// pace waits until a connection of a class in to that matches topic (or
// only, if set) has at most QueueBytes queued, or none is left, and
// (for Send) no subscriber that is still reading holds it back (lagging).
// While that is the reason, it looks again every progressWindow, since a
// subscriber that stops reading releases nobody.
func (p *Pub) pace(ctx context.Context, topic []byte, to ClassSet, only *peer) error {
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	var recheck *time.Ticker
	var recheckC <-chan time.Time
	defer func() {
		if recheck != nil {
			recheck.Stop()
		}
	}()
	for {
		p.waitMu.Lock()
		ch := p.waitCh
		p.waitMu.Unlock()
		if p.paced(topic, to, only) {
			return nil
		}
		if only == nil && recheck == nil && p.cfg.Pace == PaceLagging && p.held.Load() > p.lagBytes() {
			recheck = time.NewTicker(p.progressWindow())
			recheckC = recheck.C
		}
		select {
		case <-ch:
		case <-recheckC:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stopping:
			return ErrClosed
		}
	}
}

func (p *Pub) paced(topic []byte, to ClassSet, only *peer) bool {
	soft := int64(p.cfg.QueueBytes)
	if only != nil {
		select {
		case <-only.gone:
			return true
		default:
		}
		return only.q.queued() <= soft
	}
	if p.cfg.Pace == PaceSlowest {
		return p.allPaced(topic, to, soft)
	}
	if p.cfg.Pace == PaceLagging && p.lagging() {
		return false
	}
	matched := false
	for _, pr := range *p.snap.Load() {
		if !to.has(pr.Class()) || !pr.subs.match(topic) {
			continue
		}
		if pr.q.queued() <= soft {
			return true
		}
		matched = true
	}
	return !matched // no matching connection left
}

// allPaced reports whether every matching connection that is not
// Evictable has at most soft bytes queued (PaceSlowest).
func (p *Pub) allPaced(topic []byte, to ClassSet, soft int64) bool {
	for _, pr := range *p.snap.Load() {
		if !to.has(pr.Class()) || !pr.subs.match(topic) || pr.q.queued() <= soft {
			continue
		}
		if p.cfg.Evictable == nil || !p.cfg.Evictable(pr.id) {
			return false
		}
	}
	return true
}

// wake releases the Sends waiting in pace, to look again.
func (p *Pub) wake() {
	if p.waiters.Load() == 0 {
		return
	}
	p.waitMu.Lock()
	close(p.waitCh)
	p.waitCh = make(chan struct{})
	p.waitMu.Unlock()
}

// Kick closes connection id; err says why (PeerEvent.Err wraps it in
// ErrKicked). Its queue is dropped. It is counted once, in
// PubStats.Kicked; kicking a connection that is gone does nothing. It
// does not block.
func (p *Pub) Kick(id ConnID, err error) {
	p.mu.Lock()
	pr := p.peers[id]
	p.mu.Unlock()
	if pr == nil {
		return
	}
	cause := ErrKicked
	if err != nil {
		cause = fmt.Errorf("%w: %w", ErrKicked, err)
	}
	if pr.kill(cause) {
		p.kicked.Add(1)
		p.cfg.Logger.Debug("subscriber kicked", zap.String("remote", pr.remote), zap.Error(err))
	}
}

// SetClass puts connection id in class c, for the messages Send queues
// from now on; those queued before keep their course. It reports whether
// the connection exists. It does not block.
func (p *Pub) SetClass(id ConnID, c Class) bool {
	p.mu.Lock()
	pr := p.peers[id]
	p.mu.Unlock()
	if pr == nil {
		return false
	}
	pr.class.Store(uint32(c & 63))
	return true
}

// Peers returns the number of connected subscribers.
func (p *Pub) Peers() int { return len(*p.snap.Load()) }

// Stats returns a snapshot of the counters.
func (p *Pub) Stats() PubStats {
	st := PubStats{
		Peers:                p.Peers(),
		Sent:                 p.sent.Load(),
		SlowConsumers:        p.slow.Load(),
		Dropped:              p.dropped.Load(),
		QueuedBytes:          p.held.Load(),
		Waits:                p.waits.Load(),
		HandshakeFailed:      p.hsFailed.Load(),
		BadInput:             p.badInput.Load(),
		TooManySubscriptions: p.tooManySubs.Load(),
		SubscriptionBytes:    p.subBytes.Load(),
		SubscriptionEvicted:  p.subEvicted.Load(),
		Kicked:               p.kicked.Load(),
		Evicted:              p.evicted.Load(),
		EvictedPending:       p.evictedPending.Load(),
		RefusedPeers:         p.refusedPeers.Load(),
		RefusedPerIP:         p.refusedPerIP.Load(),
		TLSFailed:            p.tlsFailed.Load(),
		RefusedIdentity:      p.refusedID.Load(),
	}
	st.Refused = st.RefusedPeers + st.RefusedPerIP
	p.mu.Lock()
	st.Pending = p.pending.len()
	p.mu.Unlock()
	return st
}

func (p *Pub) isStopping() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

// stopLocked ends admissions and Sends, and releases waiting Sends with
// ErrClosed. It returns the connected peers. p.mu must be held.
func (p *Pub) stopLocked() []*peer {
	p.stopOnce.Do(func() { close(p.stopping) })
	p.pending.each(func(pc *pendingConn) { pc.nc.Close() })
	peers := make([]*peer, 0, len(p.peers))
	for _, pr := range p.peers {
		peers = append(peers, pr)
	}
	return peers
}

// Shutdown is the graceful Close. It stops accepting connections and
// Sends (waiting Sends return ErrClosed), has every writer flush its
// queue to the kernel, and then closes each connection: those for which
// waitFor returns true are half-closed (FIN after the data) and waited
// for until the subscriber hangs up, so it reads everything; the others
// are closed once flushed, and not waited for beyond that. It then Closes.
// A subscriber waited for is not cut for SlowTimeout meanwhile: it may be
// busy, and nothing new is sent that it could hold up.
//
// Shutdown blocks until every connection is gone or ctx ends, and returns
// ctx.Err() in the latter case. waitFor (nil: none) is called once per
// connection and must not block. Idempotent: later calls wait for the
// first and return nil.
func (p *Pub) Shutdown(ctx context.Context, waitFor func(ConnID) bool) error {
	first := false
	p.shutOnce.Do(func() {
		first = true
		p.mu.Lock()
		peers := p.stopLocked()
		p.mu.Unlock()
		p.ln.Close()
		for _, pr := range peers {
			pr.q.closeAfterFlush(waitFor != nil && waitFor(pr.id))
		}
		for _, pr := range peers {
			select {
			case <-pr.gone:
			case <-ctx.Done():
				p.shutErr = ctx.Err()
				return
			}
		}
	})
	p.Close()
	if !first {
		return nil
	}
	return p.shutErr
}

// Close stops accepting, closes every connection at once and waits for
// every goroutine of the Pub. Queued messages are discarded (counted in
// the PeerEvents); call Shutdown to deliver them. Sends waiting return
// ErrClosed. Idempotent.
func (p *Pub) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		peers := p.stopLocked()
		close(p.closed)
		p.g.Stop()
		p.mu.Unlock()
		p.ln.Close()
		for _, pr := range peers {
			pr.kill(ErrClosed)
		}
	})
	p.g.Wait()
	return nil
}
