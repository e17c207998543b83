package coord

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/proto/handshake"

	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/envelope"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// Publisher publishes envelopes on a PUB socket once a quorum of
// subscribers has proven its data path through the sync handshake.
//
// Publish may be called from many goroutines. Messages of one topic are
// numbered in the order Publish calls return, and subscribers receive all
// messages in the order Publish accepted them, across topics too. Close is
// graceful: it sends what was accepted, then END, then waits for the
// subscribers to take it.
type Publisher struct {
	cfg  PublisherConfig
	lg   *zap.Logger
	pub  *wire.Pub
	sync *wire.Server
	rec  *recoveryServer // nil when recovery is off
	g    gogroup.Group

	quorum *quorum
	nonces nonceRing

	cluster *cluster // nil without Gossip
	lostMu  sync.Mutex
	wasLost bool // quorum lost as last logged
	started time.Time
	open    atomic.Bool // publishing allowed

	mu        sync.Mutex
	topics    map[string]*topicState
	batch     *outMsg   // the batch still accepting records, of one topic
	ready     []*outMsg // sealed batches in publish order
	pending   int       // bytes accepted but not yet handed to the socket
	closing   bool
	wake      chan struct{} // sender: batches are ready
	space     chan struct{} // publishers: pending dropped
	stop      chan struct{} // sender: flush, send END, exit
	senderOut chan struct{} // closed when the sender has exited

	closeOnce sync.Once
	closeErr  error
	pool      sync.Pool

	published, batches, controls atomic.Uint64
}

// topicState is the publisher's view of one topic.
type topicState struct {
	name     string
	seq      uint64 // last sequence assigned by Publish
	sent     uint64 // last sequence handed to the socket (sender only; read under mu)
	reported uint64 // sent as of the last heartbeat
}

// outMsg is a batch being built and then sent; pooled, reused only after
// every connection wrote it.
type outMsg struct {
	wire.Msg
	b      envelope.Builder
	buf    []byte
	frames envelope.Frames
	topic  *topicState
	bytes  int
}

// NewPublisher binds the PUB and sync endpoints and starts probing for
// subscribers. It does not block.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Publisher{
		cfg:       cfg,
		lg:        cfg.Logger.Named("publisher").With(zap.String("publisher", cfg.ID.Short())),
		quorum:    newQuorum(cfg.Quorum),
		started:   time.Now(),
		topics:    make(map[string]*topicState),
		wake:      make(chan struct{}, 1),
		space:     make(chan struct{}, 1),
		stop:      make(chan struct{}),
		senderOut: make(chan struct{}),
	}
	p.pool.New = func() any {
		m := &outMsg{}
		m.OnFree = func(*wire.Msg) { p.pool.Put(m) }
		return m
	}
	wcfg := cfg.Wire
	if wcfg.Logger == nil {
		wcfg.Logger = p.lg
	}
	userEvent := wcfg.OnEvent
	wcfg.OnEvent = func(ev wire.PeerEvent) {
		if ev.Type == wire.PeerSlow {
			p.lg.Warn("slow subscriber disconnected", zap.String("remote", ev.Remote), zap.Int("dropped", ev.Dropped))
		}
		if userEvent != nil {
			userEvent(ev)
		}
	}
	var err error
	if p.pub, err = wire.Listen(cfg.Bind, wcfg); err != nil {
		return nil, err
	}
	if p.sync, err = wire.Serve(cfg.SyncBind, wire.ServerConfig{Logger: p.lg}, p.handleSync); err != nil {
		p.pub.Close()
		return nil, err
	}
	if cfg.RecoveryBind != "" {
		if p.rec, err = newRecoveryServer(p); err != nil {
			p.pub.Close()
			p.sync.Close()
			return nil, err
		}
	}
	if cfg.Quorum == (QuorumRule{}) {
		p.quorum.force(time.Now())
		p.open.Store(true)
	}
	if cfg.Gossip != nil {
		if err := p.joinCluster(); err != nil {
			p.pub.Close()
			p.sync.Close()
			if p.rec != nil {
				p.rec.close()
			}
			return nil, err
		}
	}
	p.g.Go(p.sender)
	p.lg.Info("publisher started",
		zap.String("pub", p.pub.Endpoint()), zap.String("sync", p.sync.Endpoint()),
		zap.Uint64("epoch", cfg.Epoch), zap.Stringer("quorum", cfg.Quorum))
	return p, nil
}

// Endpoint returns the bound PUB endpoint, with the port the OS chose.
func (p *Publisher) Endpoint() string { return p.pub.Endpoint() }

// SyncEndpoint returns the bound sync endpoint.
func (p *Publisher) SyncEndpoint() string { return p.sync.Endpoint() }

// RecoveryEndpoint returns the bound recovery endpoint, or "" when
// recovery is off.
func (p *Publisher) RecoveryEndpoint() string {
	if p.rec == nil {
		return ""
	}
	return p.rec.srv.Endpoint()
}

// lastSent returns the last sequence handed to the socket on topic.
func (p *Publisher) lastSent(topic string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ts := p.topics[topic]; ts != nil {
		return ts.sent
	}
	return 0
}

// ID returns the publisher id.
func (p *Publisher) ID() envelope.ID { return p.cfg.ID }

// Epoch returns this incarnation's epoch.
func (p *Publisher) Epoch() uint64 { return p.cfg.Epoch }

// WaitQuorum blocks until the quorum (Expect, or the membership Quorum
// once Settle has passed) has joined. When QuorumTimeout passes first it
// returns a *QuorumError (policy fail) or nil (policy proceed, publishing
// starts with those present). It returns ctx.Err() if ctx ends first, and
// ErrClosed after Close.
func (p *Publisher) WaitQuorum(ctx context.Context) error {
	if p.open.Load() {
		return p.quorum.err()
	}
	var timeout <-chan time.Time
	if p.cfg.QuorumTimeout > 0 {
		// The timeout runs from the publisher's start, not from this call.
		t := time.NewTimer(p.cfg.QuorumTimeout - time.Since(p.started))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-p.quorum.reached:
	case <-timeout:
		_, live, need := p.quorum.counts()
		if p.cfg.QuorumPolicy == QuorumProceed {
			p.lg.Warn("quorum timeout, proceeding", zap.Int("joined", live), zap.Int("expect", need))
			p.quorum.force(time.Now())
		} else {
			p.quorum.fail(&QuorumError{Joined: live, Expect: need})
		}
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stop:
		return ErrClosed
	}
	if err := p.quorum.err(); err != nil {
		return err
	}
	p.open.Store(true)
	return nil
}

// Publish stamps payload with the next sequence of topic and queues it for
// the PUB socket, returning that sequence. Before quorum it blocks as
// WaitQuorum does; when MaxPending bytes are queued it blocks until the
// socket takes them or ctx ends. payload is copied; the caller may reuse
// it at once. A sequence number is given only to a message that will be
// handed to the socket. Under QuorumLost pause it also blocks while a
// membership quorum reached before is lost.
func (p *Publisher) Publish(ctx context.Context, topic string, payload []byte) (uint64, error) {
	if !p.open.Load() {
		if err := p.WaitQuorum(ctx); err != nil {
			return 0, err
		}
	}
	if p.cfg.QuorumLost == LostPause && p.quorum.lost.Load() {
		if err := p.quorum.waitHave(ctx, p.stop); err != nil {
			return 0, err
		}
	}
	if len(payload) > p.cfg.MaxPayload {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), p.cfg.MaxPayload)
	}
	p.mu.Lock()
	for p.pending >= p.cfg.MaxPending && !p.closing {
		p.mu.Unlock()
		select {
		case <-p.space:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		p.mu.Lock()
	}
	if p.closing {
		p.mu.Unlock()
		return 0, ErrClosed
	}
	ts := p.topics[topic]
	if ts == nil {
		if err := envelope.CheckTopic([]byte(topic), envelope.KindData, envelope.Limits{}); err != nil {
			p.mu.Unlock()
			return 0, fmt.Errorf("%w: %v", ErrBadTopic, err)
		}
		if !envelope.MatchesAny(p.cfg.Topics, topic) {
			// Subscribers found this publisher by its announced topics; one
			// outside them could reach nobody who needs it.
			p.mu.Unlock()
			return 0, fmt.Errorf("%w: %q does not start with an announced topic %q", ErrBadTopic, topic, p.cfg.Topics)
		}
		ts = &topicState{name: topic}
		p.topics[topic] = ts
	}
	// Only consecutive records of one topic share a batch, so subscribers
	// see the publisher's order across topics too, as with a plain PUB.
	m := p.batch
	if m != nil && (m.topic != ts || m.b.Size()+len(payload)+4 > p.cfg.MaxBatchBytes+len(topic)+envelope.HeaderSize || m.b.Count() >= p.cfg.MaxBatchRecords) {
		p.ready = append(p.ready, m)
		m = nil
	}
	if m == nil {
		m = p.newBatch(ts)
		p.batch = m
	}
	m.b.Add(payload)
	m.bytes += len(payload) + 4
	p.pending += len(payload) + 4
	ts.seq++
	seq := ts.seq
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return seq, nil
}

func (p *Publisher) newBatch(ts *topicState) *outMsg {
	m := p.pool.Get().(*outMsg)
	m.topic, m.bytes = ts, 0
	m.b.Begin(m.buf, ts.name, envelope.Header{
		Kind:      envelope.KindData,
		Publisher: p.cfg.ID,
		Epoch:     p.cfg.Epoch,
		Seq:       ts.seq + 1,
		Time:      time.Now().UnixNano(),
	})
	return m
}

// takeBatches seals the open batch and returns all sealed ones in order.
func (p *Publisher) takeBatches(dst []*outMsg) []*outMsg {
	p.mu.Lock()
	if p.batch != nil {
		p.ready = append(p.ready, p.batch)
		p.batch = nil
	}
	dst = append(dst, p.ready...)
	clear(p.ready)
	p.ready = p.ready[:0]
	p.mu.Unlock()
	return dst
}

// sender is the one goroutine that writes to the PUB socket: batches in
// order, then HELLO probes and heartbeats when they are due.
func (p *Publisher) sender() {
	defer close(p.senderOut)
	hello := time.NewTicker(p.cfg.HelloInterval)
	defer hello.Stop()
	heartbeat := time.NewTicker(p.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	ctx := context.Background()
	var batch []*outMsg
	p.sendHello(ctx)
	for {
		select {
		case <-p.wake:
			if p.cfg.Linger > 0 {
				p.linger()
			}
			batch = p.sendBatches(ctx, batch)
		case <-hello.C:
			p.sendHello(ctx)
		case <-heartbeat.C:
			batch = p.sendBatches(ctx, batch)
			p.sendTable(ctx, envelope.KindHeartbeat, false)
		case <-p.stop:
			p.sendBatches(ctx, batch)
			p.sendTable(ctx, envelope.KindEnd, true)
			return
		}
	}
}

// linger waits Linger for more records to join the batch, or until Close.
func (p *Publisher) linger() {
	t := time.NewTimer(p.cfg.Linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.stop:
	}
}

func (p *Publisher) sendBatches(ctx context.Context, batch []*outMsg) []*outMsg {
	batch = p.takeBatches(batch[:0])
	if len(batch) == 0 {
		return batch
	}
	sent := 0
	for _, m := range batch {
		m.frames, m.buf = m.b.Finish()
		m.Frames = m.frames[:]
		ts, last, bytes := m.topic, m.b.Count(), m.bytes
		if p.rec != nil {
			// Retain before sending: once sent, the pool may reuse m.
			h, _ := envelope.ParseHeader(m.frames[1])
			p.rec.retain(ts.name, &envelope.Message{Topic: m.frames[0], Header: h, Payload: m.frames[2]})
		}
		if err := p.pub.Send(ctx, &m.Msg); err != nil {
			p.lg.Debug("send failed", zap.Error(err)) // only when closed
		}
		// m may be back in the pool now; use the copies.
		p.mu.Lock()
		ts.sent += uint64(last)
		p.mu.Unlock()
		sent += bytes
		p.published.Add(uint64(last))
		p.batches.Add(1)
	}
	p.mu.Lock()
	p.pending -= sent
	p.mu.Unlock()
	select {
	case p.space <- struct{}{}:
	default:
	}
	clear(batch)
	return batch
}

func (p *Publisher) sendHello(ctx context.Context) {
	var nonce [envelope.NonceSize]byte
	_, _ = rand.Read(nonce[:])
	p.nonces.add(nonce)
	p.sendControl(ctx, envelope.KindHello, nonce[:])
}

// heartbeatTopics bounds the unchanged topics a heartbeat repeats.
const heartbeatTopics = 1024

// sendTable sends END with every topic, or a HEARTBEAT with every topic
// sent since the last one plus up to heartbeatTopics others. Repeating
// unchanged topics matters: a subscriber that was disconnected when a
// burst ended learns of its lost tail only from a later heartbeat. With
// more topics than that, map order picks a different sample each time.
func (p *Publisher) sendTable(ctx context.Context, kind envelope.Kind, all bool) {
	var t []envelope.TopicSeq
	repeated := 0
	p.mu.Lock()
	for _, ts := range p.topics {
		changed := ts.sent != ts.reported
		if !all && !changed {
			if repeated == heartbeatTopics || ts.sent == 0 {
				continue
			}
			repeated++
		}
		t = append(t, envelope.TopicSeq{Topic: ts.name, Seq: ts.sent})
		ts.reported = ts.sent
		if len(t) == envelope.MaxTableEntries {
			break
		}
	}
	p.mu.Unlock()
	p.sendControl(ctx, kind, envelope.AppendTable(nil, t))
}

func (p *Publisher) sendControl(ctx context.Context, kind envelope.Kind, payload []byte) {
	frames, _ := envelope.Encode(nil, envelope.ControlTopic, envelope.Header{
		Kind:      kind,
		Publisher: p.cfg.ID,
		Epoch:     p.cfg.Epoch,
		Time:      time.Now().UnixNano(),
	}, payload)
	_ = p.pub.Send(ctx, &wire.Msg{Frames: frames[:]})
	p.controls.Add(1)
}

// handleSync answers READY requests on the sync endpoint.
func (p *Publisher) handleSync(_ context.Context, wr wire.Request, reply func(...[]byte) error) error {
	req := wr.Frames
	if wr.TooLarge {
		return reply(p.errorReply(handshake.CodeMalformed, fmt.Sprintf("request of %d bytes is over the size limit", wr.Size)))
	}
	if len(req) != 1 {
		return reply(p.errorReply(handshake.CodeMalformed, fmt.Sprintf("request has %d frames, want 1", len(req))))
	}
	r, err := handshake.DecodeReady(req[0])
	if err != nil {
		var he *handshake.Error
		errors.As(err, &he)
		return reply(p.errorReply(he.Code, he.Msg))
	}
	if r.Publisher != p.cfg.ID.String() || r.Epoch != p.cfg.Epoch {
		return reply(p.errorReply(handshake.CodeWrongPublisher, fmt.Sprintf("this is publisher %s epoch %d", p.cfg.ID, p.cfg.Epoch)))
	}
	if r.Type == handshake.TypeBye {
		p.quorum.bye(r.Subscriber)
		return reply(handshake.Encode(struct {
			V    int    `json:"v"`
			Type string `json:"type"`
		}{handshake.Version, handshake.TypeBye}))
	}
	if !p.nonces.has(r.Nonce) {
		return reply(p.errorReply(handshake.CodeBadNonce, "nonce is not from a recent HELLO; wait for the next one"))
	}
	ack := handshake.Ack{V: handshake.Version, Type: handshake.TypeAck, Publisher: p.cfg.ID.String(), Epoch: p.cfg.Epoch,
		Recovery: p.RecoveryEndpoint(), Topics: []handshake.TopicSeq{}} // [] not null, for simple clients
	// The topic table is taken before the join is counted, so that at
	// quorum nothing has been published and every table is empty.
	p.mu.Lock()
	for _, ts := range p.topics {
		ack.Topics = append(ack.Topics, handshake.TopicSeq{Topic: ts.name, Seq: ts.sent})
	}
	p.mu.Unlock()
	joined, first, reached := p.quorum.join(r.Subscriber, time.Now())
	_, live, need := p.quorum.counts()
	ack.Joined, ack.Expect, ack.Quorum = joined, need, reached
	if first {
		p.lg.Info("subscriber joined", zap.String("subscriber", r.Subscriber), zap.Int("joined", joined), zap.Int("live", live), zap.Int("need", need))
	}
	p.noteQuorum()
	return reply(handshake.Encode(ack))
}

func (p *Publisher) errorReply(code, msg string) []byte {
	p.lg.Debug("sync request refused", zap.String("code", code), zap.String("reason", msg))
	return handshake.Encode(handshake.ErrorReply{V: handshake.Version, Type: handshake.TypeError, Code: code, Message: msg})
}

// Close publishes what Publish accepted, sends END, and waits until the
// subscribers have taken everything or ctx ends; then it closes the
// sockets and waits for every goroutine. Idempotent: later calls return
// the first call's result.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		close(p.stop)
		select {
		case <-p.senderOut:
			p.closeErr = p.pub.Shutdown(ctx, func(wire.ConnID) bool { return true })
		case <-ctx.Done():
			p.closeErr = ctx.Err()
		}
		p.pub.Close() // unblocks a sender stuck on a slow subscriber
		p.g.Stop()
		p.g.Wait()
		if p.rec != nil {
			// Subscribers that lost the tail ask for it right after END;
			// those that have everything say bye.
			p.rec.linger(ctx, p.cfg.RecoveryLinger, p.quorum.allSaidBye)
			p.rec.close()
		}
		_ = p.sync.Shutdown(ctx) // an ACK being written still goes out
		p.leaveCluster(ctx)
		p.lg.Info("publisher closed", zap.Uint64("published", p.published.Load()))
	})
	return p.closeErr
}

// PublisherStats is a snapshot of a Publisher's counters.
type PublisherStats struct {
	Published uint64 // records handed to the socket
	Batches   uint64 // DATA messages those records travelled in
	Control   uint64 // HELLO, HEARTBEAT and END messages
	Joined    int    // distinct subscribers that completed the handshake
	Replayed  uint64 // records resent over the recovery channel
	Retained  recovery.HistoryStats
	Quorum    bool      // publishing has started
	QuorumAt  time.Time // when it started
	// Live is how many subscribers count toward the quorum now, Need how
	// many it requires; under a static quorum Live equals Joined.
	Live, Need int
	// QuorumLost is set when a membership quorum reached before is lost.
	QuorumLost bool
	Wire       wire.PubStats
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() PublisherStats {
	at, reached := p.quorum.at()
	var replayed uint64
	var retained recovery.HistoryStats
	if p.rec != nil {
		replayed, retained = p.rec.replayed.Load(), p.rec.history.Stats()
	}
	_, live, need := p.quorum.counts()
	return PublisherStats{
		Live:       live,
		Need:       need,
		QuorumLost: p.quorum.lost.Load(),
		Replayed:   replayed,
		Retained:   retained,
		Published:  p.published.Load(),
		Batches:    p.batches.Load(),
		Control:    p.controls.Load(),
		Joined:     p.quorum.joinedCount(),
		Quorum:     reached,
		QuorumAt:   at,
		Wire:       p.pub.Stats(),
	}
}
