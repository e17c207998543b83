package coord

import (
	"context"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/internal/wire"
	"go.uber.org/zap"
)

// Subscriber receives a publisher's stream, joins its quorum through the
// sync handshake, and hands the application every record in order, or an
// explicit EventLoss for what is missing.
//
// One goroutine owns all stream state and calls Handler; a second runs
// handshakes so a slow sync endpoint never stalls the data path.
type Subscriber struct {
	cfg    SubscriberConfig
	lg     *zap.Logger
	sub    *wire.Sub
	client *wire.Client
	g      gogroup.Group
	ctx    context.Context
	cancel context.CancelFunc

	acks  chan ackResult
	pubs  map[envelope.ID]*pubState // owned by run
	cause string                    // hint for the next gap, owned by run

	readyOnce sync.Once
	ready     chan struct{}
	closeOnce sync.Once

	stats subscriberCounters
}

type subscriberCounters struct {
	received, lost, gaps, duplicates, malformed, skipped, handshakes, handshakeErrors, reconnects atomic.Uint64
}

// pubState is what a subscriber knows of one publisher incarnation.
type pubState struct {
	id          envelope.ID
	epoch       uint64
	joined      bool
	handshaking bool
	held        []envelope.Message // DATA that arrived before the ACK
	heldRecords int
	overflowed  bool // held hit MaxHeld; what was dropped is reported at the ACK
	streams     map[string]*seqTracker
}

// seqTracker follows one topic of one publisher incarnation.
type seqTracker struct {
	next uint64 // next sequence to deliver
}

type ackResult struct {
	id    envelope.ID
	epoch uint64
	ack   *Ack
	err   error
}

// NewSubscriber connects to the publisher and starts the handshake as soon
// as a HELLO arrives. It does not block; use WaitReady.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	lg := cfg.Logger.Named("subscriber").With(zap.String("subscriber", cfg.ID))
	client, err := wire.NewClient(cfg.Sync, wire.ClientConfig{Timeout: cfg.HandshakeTimeout, Attempts: cfg.HandshakeAttempts})
	if err != nil {
		return nil, err
	}
	prefixes := cfg.Subscribe
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	// The control topic goes last: a HELLO then proves every data
	// subscription before it has reached the publisher too.
	prefixes = append(append([]string(nil), prefixes...), envelope.ControlTopic)
	wcfg := cfg.Wire
	if wcfg.Logger == nil {
		wcfg.Logger = lg
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{
		cfg:    cfg,
		lg:     lg,
		sub:    wire.NewSub(wcfg, prefixes...),
		client: client,
		ctx:    ctx,
		cancel: cancel,
		acks:   make(chan ackResult, 1),
		pubs:   make(map[envelope.ID]*pubState),
		ready:  make(chan struct{}),
	}
	if err := s.sub.Connect(cfg.Connect); err != nil {
		cancel()
		s.sub.Close()
		return nil, err
	}
	s.g.Go(s.run)
	return s, nil
}

// WaitReady blocks until the first handshake completed, ctx ends
// (ctx.Err()) or the Subscriber is closed (ErrClosed).
func (s *Subscriber) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}

// ID returns the subscriber id used in the handshake.
func (s *Subscriber) ID() string { return s.cfg.ID }

func (s *Subscriber) run() {
	for {
		select {
		case d := <-s.sub.Deliveries():
			s.onDelivery(d)
		case r := <-s.acks:
			s.onAck(r)
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *Subscriber) emit(ev Event) { s.cfg.Handler(ev) }

func (s *Subscriber) onDelivery(d wire.Delivery) {
	switch d.Kind {
	case wire.Connected:
		s.emit(Event{Type: EventConnected})
		return
	case wire.Disconnected:
		s.stats.reconnects.Add(1)
		s.cause = CauseReconnect
		s.emit(Event{Type: EventDisconnected, Err: d.Err})
		return
	}
	m, err := envelope.Decode(d.Frames, envelope.Limits{})
	if err != nil {
		s.stats.malformed.Add(1)
		s.lg.Debug("malformed message", zap.Error(err))
		return
	}
	ps := s.pubs[m.Publisher]
	if ps == nil || m.Epoch > ps.epoch {
		ps = s.newIncarnation(ps, m.Publisher, m.Epoch)
	} else if m.Epoch < ps.epoch {
		s.stats.skipped.Add(uint64(max(m.Count, 1)))
		return // a message from before a restart still in flight
	}
	if m.Kind == envelope.KindHello {
		if !ps.joined && !ps.handshaking {
			ps.handshaking = true
			nonce := hex.EncodeToString(m.Payload)
			id, epoch := ps.id, ps.epoch
			s.g.Go(func() { s.handshake(id, epoch, nonce) })
		}
		return
	}
	if !ps.joined {
		// DATA, heartbeats and END can overtake our ACK: keep them, in
		// order, until we know where our stream starts.
		s.hold(ps, m)
		return
	}
	s.process(ps, &m)
}

// process handles DATA, HEARTBEAT and END of a joined publisher.
func (s *Subscriber) process(ps *pubState, m *envelope.Message) {
	switch m.Kind {
	case envelope.KindData:
		s.deliver(ps, m)
	case envelope.KindHeartbeat, envelope.KindEnd:
		table, _ := envelope.ParseTable(m.Payload) // Decode validated it
		for _, e := range table {
			if s.wants(e.Topic) {
				s.tail(ps, e.Topic, e.Seq)
			}
		}
		if m.Kind == envelope.KindEnd {
			s.emit(Event{Type: EventEnd, Publisher: ps.id, Epoch: ps.epoch})
		}
	}
}

// newIncarnation starts tracking a publisher, or a restarted one.
func (s *Subscriber) newIncarnation(old *pubState, id envelope.ID, epoch uint64) *pubState {
	if old != nil {
		s.lg.Warn("publisher restarted", zap.String("publisher", id.Short()), zap.Uint64("old_epoch", old.epoch), zap.Uint64("epoch", epoch))
		s.emit(Event{Type: EventRestart, Publisher: id, Epoch: epoch})
	}
	ps := &pubState{id: id, epoch: epoch, streams: make(map[string]*seqTracker)}
	s.pubs[id] = ps
	return ps
}

func (s *Subscriber) hold(ps *pubState, m envelope.Message) {
	if ps.heldRecords+int(m.Count) > s.cfg.MaxHeld && m.Kind == envelope.KindData {
		ps.overflowed = true // the gap shows at the ACK and is reported there
		return
	}
	ps.held = append(ps.held, m)
	ps.heldRecords += max(int(m.Count), 1)
}

// handshake runs on its own goroutine: READY, then hand the result to run.
func (s *Subscriber) handshake(id envelope.ID, epoch uint64, nonce string) {
	req := encodeJSON(Ready{
		V: HandshakeVersion, Type: TypeReady, Subscriber: s.cfg.ID,
		Publisher: id.String(), Epoch: epoch, Nonce: nonce, Topics: s.cfg.Subscribe,
	})
	r := ackResult{id: id, epoch: epoch}
	reply, err := s.client.Request(s.ctx, [][]byte{req})
	switch {
	case err != nil:
		r.err = err
	case len(reply) != 1:
		r.err = handshakeErr(CodeMalformed, "reply has %d frames", len(reply))
	default:
		r.ack, r.err = DecodeReply(reply[0])
	}
	select {
	case s.acks <- r:
	case <-s.ctx.Done():
	}
}

func (s *Subscriber) onAck(r ackResult) {
	ps := s.pubs[r.id]
	if ps == nil || ps.epoch != r.epoch {
		return // the publisher restarted meanwhile; its next HELLO starts over
	}
	ps.handshaking = false
	if r.err != nil {
		s.stats.handshakeErrors.Add(1)
		s.lg.Warn("sync handshake failed; retrying on the next HELLO", zap.String("publisher", r.id.Short()), zap.Error(r.err))
		return
	}
	if r.ack.Publisher != ps.id.String() || r.ack.Epoch != ps.epoch {
		s.stats.handshakeErrors.Add(1)
		return
	}
	s.stats.handshakes.Add(1)
	ps.joined = true
	for _, t := range r.ack.Topics {
		if s.wants(t.Topic) {
			ps.streams[t.Topic] = &seqTracker{next: t.Seq + 1}
		}
	}
	s.lg.Info("joined publisher", zap.String("publisher", ps.id.Short()), zap.Uint64("epoch", ps.epoch),
		zap.Int("joined", r.ack.Joined), zap.Int("expect", r.ack.Expect), zap.Bool("quorum", r.ack.Quorum))
	s.emit(Event{Type: EventJoined, Publisher: ps.id, Epoch: ps.epoch})
	held := ps.held
	ps.held, ps.heldRecords = nil, 0
	if ps.overflowed {
		s.cause = CauseBeforeJoin
	}
	for i := range held {
		s.process(ps, &held[i])
	}
	s.readyOnce.Do(func() { close(s.ready) })
}

func (s *Subscriber) wants(topic string) bool {
	if len(s.cfg.Subscribe) == 0 {
		return true
	}
	for _, p := range s.cfg.Subscribe {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

func (s *Subscriber) stream(ps *pubState, topic []byte) *seqTracker {
	st := ps.streams[string(topic)]
	if st == nil {
		// A topic the ACK did not list was created after the join: it
		// starts at 1.
		st = &seqTracker{next: 1}
		ps.streams[string(topic)] = st
	}
	return st
}

// deliver hands the records of m to the application in order, reporting
// any jump as a loss and dropping what was already delivered.
func (s *Subscriber) deliver(ps *pubState, m *envelope.Message) {
	st := s.stream(ps, m.Topic)
	if m.LastSeq() < st.next {
		s.stats.duplicates.Add(uint64(m.Count))
		return
	}
	topic := string(m.Topic)
	for seq, payload := range m.Records() {
		if seq < st.next {
			s.stats.duplicates.Add(1)
			continue
		}
		if seq > st.next {
			s.loss(ps, topic, st.next, seq-1)
		} else {
			s.cause = "" // in order again: the next gap needs its own cause
		}
		st.next = seq + 1
		s.stats.received.Add(1)
		s.emit(Event{Type: EventMessage, Publisher: ps.id, Epoch: ps.epoch, Topic: topic, Seq: seq,
			Payload: payload, Time: m.Time, Replay: m.Flags&envelope.FlagReplay != 0})
	}
}

// tail checks a heartbeat's or END's last sequence for topic: anything up
// to it that has not arrived is missing.
func (s *Subscriber) tail(ps *pubState, topic string, last uint64) {
	st := s.stream(ps, []byte(topic))
	if last >= st.next {
		s.loss(ps, topic, st.next, last)
		st.next = last + 1
	}
}

func (s *Subscriber) loss(ps *pubState, topic string, from, to uint64) {
	cause := s.cause
	if cause == "" {
		cause = CauseUnknown
	}
	s.stats.gaps.Add(1)
	s.stats.lost.Add(to - from + 1)
	s.lg.Warn("messages lost", zap.String("publisher", ps.id.Short()), zap.Uint64("epoch", ps.epoch),
		zap.String("topic", topic), zap.Uint64("from", from), zap.Uint64("to", to), zap.String("cause", cause))
	s.emit(Event{Type: EventLoss, Publisher: ps.id, Epoch: ps.epoch, Topic: topic, From: from, To: to, Cause: cause})
}

// Gap causes reported in EventLoss.Cause.
const (
	CauseUnknown    = "unknown"
	CauseBeforeJoin = "before-join"
	CauseReconnect  = "reconnect"
)

// SubscriberStats is a snapshot of a Subscriber's counters.
type SubscriberStats struct {
	Received        uint64 // records delivered to the handler
	Lost            uint64 // records reported in EventLoss
	Gaps            uint64 // EventLoss events
	Duplicates      uint64 // records received again and dropped
	Malformed       uint64 // messages that failed to decode
	Skipped         uint64 // records of an older epoch after a restart
	Handshakes      uint64
	HandshakeErrors uint64
	Disconnects     uint64
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (s *Subscriber) Stats() SubscriberStats {
	c := &s.stats
	return SubscriberStats{
		Received: c.received.Load(), Lost: c.lost.Load(), Gaps: c.gaps.Load(),
		Duplicates: c.duplicates.Load(), Malformed: c.malformed.Load(), Skipped: c.skipped.Load(),
		Handshakes: c.handshakes.Load(), HandshakeErrors: c.handshakeErrors.Load(), Disconnects: c.reconnects.Load(),
	}
}

// Close stops the Subscriber and waits for its goroutines; the Handler is
// not called after Close returns. Idempotent.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.g.Stop()
		s.g.Wait()
		s.sub.Close()
		s.client.Close()
	})
	return nil
}
