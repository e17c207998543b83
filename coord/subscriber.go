package coord

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/internal/mutation"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/internal/ratelog"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// Subscriber receives the streams of one or more publishers, joins each
// publisher's quorum through the sync handshake, and hands the application
// every record in order per (publisher, topic). Gaps are repaired over the
// publisher's recovery channel; what cannot be repaired is reported as an
// EventLoss with its range and cause. Nothing is lost silently.
//
// The Handler is called from one goroutine, one event at a time.
// Handshakes and repairs proceed apart from it, so a slow sync or
// recovery endpoint never stalls delivery of the other streams.
type Subscriber struct {
	// replayingHeld is set while onAck processes what arrived before the
	// ACK: a HEARTBEAT or END among it is older than a catch-up the ACK
	// granted (the END a connection gets when it comes after the end),
	// and must not cut it short; the catch-up ends with END of its own.
	replayingHeld bool

	cfg    SubscriberConfig
	lg     *zap.Logger
	io     subscriberIO // the clock and the requests to publishers
	sub    *wire.Sub
	g      gogroup.Group
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	links map[string]*link // by PUB endpoint

	cluster    *cluster            // nil without Gossip
	discovered map[string]struct{} // PUB endpoints added by discovery; cluster goroutine only

	results chan any                  // from handshake and fetch goroutines to run
	local   []any                     // results run posts to itself
	pubs    map[envelope.ID]*pubState // owned by run
	old     []*pubState               // earlier incarnations still repairing, owned by run
	ckpt    *checkpoints              // nil without StateDir; owned by run
	dirty   []*topicStream            // streams to checkpoint after this pass, owned by run
	rl      *ratelog.Logger
	repair  map[*topicStream]struct{} // streams with a repair outstanding, owned by run
	reqID   uint32                    // owned by run
	evid    evidence                  // owned by run; read under evidMu
	evidMu  sync.Mutex

	retired streamTotals // what streams of replaced incarnations counted, owned by run
	multi   multiScratch // processMulti's, owned by run
	// onTick's scratch, owned by run
	tickPubs    []*pubState
	tickRepairs []*topicStream
	statsAt     time.Time // when run last summed the streams' counters
	// connectSince is when run first ticked, for ConnectTimeout;
	// connectSettled is set once a publisher joined or the timeout was
	// judged. Owned by run.
	connectSince   time.Time
	connectSettled bool

	readyOnce sync.Once
	ready     chan struct{}
	job       *job
	closeOnce sync.Once
	closeErr  error       // what the first Close found failing or panicking
	closed    atomic.Bool // the Handler is called no more

	stats subscriberCounters

	byeHook atomic.Pointer[ByeHook] // see HoldBye
}

// pubState is what a subscriber knows of one publisher incarnation.
type pubState struct {
	id       envelope.ID
	epoch    uint64
	link     *link
	recovery string // recovery endpoint for this incarnation
	// recoveryLink is the link whose ACK named recovery: while link is
	// another (a failover, before its ACK), repairs wait.
	recoveryLink *link
	joined       bool
	handshaking  bool
	nonce        string    // of the latest HELLO: proves the current data connection
	boundNonce   string    // the nonce of the last accepted READY; BYE quotes it
	retryAt      time.Time // when a failed READY is tried again with nonce (zero: none due)
	retryEvery   time.Duration
	lastHeard    time.Time // anything at all arrived from this incarnation
	abort        string    // ABORT's reason: the publisher gave the epoch up
	// restarted: this subscriber followed an earlier epoch of the
	// publisher, so all of this one is after its join: streams start at 1.
	restarted   bool
	held        []envelope.Message // DATA and tables that arrived before the ACK
	heldRecords int
	overflowed  bool
	streams     map[string]*topicStream
	ended       bool // END arrived
	// fed: a REPLAY-flagged record came on the current data connection,
	// so the publisher had taken it off the live stream to feed it; a
	// HEARTBEAT before that went out before it did (see process).
	fed      bool
	finished bool // END arrived and every stream reached its final sequence, or the publisher is gone
}

// repairable reports whether ps can be asked for repairs now: its data
// connection is up and the ACK on it named where to repair.
func (ps *pubState) repairable() bool {
	return ps.link != nil && ps.link.up && (ps.recoveryLink == nil || ps.recoveryLink == ps.link)
}

// NewSubscriber starts a subscriber. With Connect/Sync set it connects to
// that publisher at once; more can be added with AddPublisher. It does not
// block; use WaitReady.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := newSubscriber(cfg)
	s.io = netIO{s}
	wcfg := cfg.Wire.internal()
	wcfg.Logger = s.lg
	wcfg.TLS = cfg.TLS.wireTLS()
	wcfg.Borrow = true // run decodes in place: see onDelivery
	s.sub = wire.NewSub(wcfg, s.prefixes()...)
	if cfg.StateDir != "" {
		var err error
		if s.ckpt, err = openCheckpoints(cfg.StateDir, cfg.stateFS); err != nil {
			s.cancel()
			s.sub.Close()
			return nil, err
		}
	}
	s.g.Go(s.run)
	if cfg.Connect != "" {
		if err := s.AddPublisher(Endpoints{Pub: cfg.Connect, Sync: cfg.Sync, Recovery: cfg.Recovery}); err != nil {
			s.Close()
			return nil, err
		}
	}
	if cfg.Gossip != nil {
		if err := s.joinCluster(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// newSubscriber returns a Subscriber's state, with no socket, I/O or
// goroutine yet: NewSubscriber adds the network's, the simulator its own.
func newSubscriber(cfg SubscriberConfig) *Subscriber {
	lg := cfg.Logger.Named("subscriber").With(zap.String("subscriber", cfg.ID))
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{
		cfg:     cfg,
		lg:      lg,
		ctx:     ctx,
		cancel:  cancel,
		links:   make(map[string]*link),
		rl:      ratelog.New(lg, 0),
		results: make(chan any, 256),
		pubs:    make(map[envelope.ID]*pubState),
		repair:  make(map[*topicStream]struct{}),
		ready:   make(chan struct{}),
		job:     newJob(),
	}
	s.evid.topics = make(map[string]struct{})
	return s
}

// prefixes is what the data connections subscribe to: the configured
// prefixes (none: every topic), then the control topic, last, so that a
// HELLO proves every data subscription before it has reached the
// publisher too.
func (s *Subscriber) prefixes() []string {
	prefixes := s.cfg.Subscribe
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	return append(append([]string(nil), prefixes...), envelope.ControlTopic)
}

// WaitReady blocks until the first handshake completed, ctx ends
// (ctx.Err()), the Subscriber is closed (ErrClosed) or no publisher
// joined within ConnectTimeout (the *JobError Err returns).
func (s *Subscriber) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	case <-s.job.done:
		select {
		case <-s.ready:
			return nil
		default:
		}
		if s.closed.Load() {
			return ErrClosed
		}
		return s.job.result()
	}
}

// ID returns the subscriber id used in the handshake.
func (s *Subscriber) ID() string { return s.cfg.ID }

func (s *Subscriber) run() {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d := <-s.sub.Deliveries():
			s.onDelivery(d)
		case r := <-s.results:
			s.onResult(r)
		case now := <-tick.C:
			s.onTick(now)
		case <-s.ctx.Done():
			return
		}
		s.settle()
	}
}

// settle finishes a pass of run: the results the state posted to itself,
// then the checkpoints of what this pass delivered.
func (s *Subscriber) settle() {
	for len(s.local) > 0 {
		r := s.local[0]
		s.local = s.local[1:]
		s.onResult(r)
	}
	s.flushCheckpoints()
}

// emit hands ev to the Handler, unless Close was called (perhaps by the
// Handler itself, from this goroutine).
func (s *Subscriber) emit(ev Event) bool {
	if s.closed.Load() {
		return false
	}
	if ev.Type == EventEnd {
		// Before the Handler: one that closes the Subscriber on the last
		// END must find the job complete, not interrupted.
		s.job.noteEnd(ev, len(s.Publishers()), s.Stats())
	}
	s.cfg.Handler(ev)
	return true
}

func (s *Subscriber) linkFor(endpoint string) *link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.links[endpoint]
}

func (s *Subscriber) onDelivery(d wire.Delivery) {
	switch d.Kind {
	case wire.Connected:
		s.relink(d.Endpoint)
		s.noteConnection(d.Endpoint, true)
		s.emit(Event{Type: EventConnected, Endpoint: d.Endpoint})
		return
	case wire.Disconnected:
		s.noteConnection(d.Endpoint, false)
		now := s.io.now()
		for _, ps := range s.pubsInOrder(nil) {
			if ps.link != nil && ps.link.eps.Pub == d.Endpoint {
				ps.fed = false
				for _, ts := range ps.streamsInOrder() {
					ts.st.Reconnected(now)
					ts.catchUpTo = 0
					if d.Behind {
						ts.st.SetCauseHint(recovery.CauseSlowConsumer)
					}
				}
			}
		}
		s.emit(Event{Type: EventDisconnected, Endpoint: d.Endpoint, Err: d.Err})
		return
	case wire.Messages:
		// The frames alias the socket's read buffer: every record is
		// delivered, or copied by the stream that holds it, before the
		// buffer goes back. Over inproc:// they are the publisher's own
		// buffers, which no wire carried: no checksum to verify
		// (envelope.DecodeInProcess).
		decode := envelope.Decode
		if d.InProcess {
			decode = envelope.DecodeInProcess
		}
		for i := range d.Msgs.Len() {
			s.onMessage(d.Endpoint, d.Msgs.Msg(i), decode)
		}
		d.Release()
		return
	}
	s.onMessage(d.Endpoint, d.Frames, envelope.Decode)
}

// onMessage handles one message from the data connection to endpoint,
// decoded with decode. frames are valid only during the call.
func (s *Subscriber) onMessage(endpoint string, frames [][]byte, decode func([][]byte, envelope.Limits) (envelope.Message, error)) {
	m, err := decode(frames, envelope.Limits{})
	if err != nil {
		s.stats.malformed.Add(1)
		if errors.Is(err, envelope.ErrVersion) {
			s.stats.otherVersion.Add(1)
			s.rl.Warn("other-version", "dropped an envelope of a protocol version this subscriber does not speak", zap.String("endpoint", endpoint), zap.Error(err))
			return
		}
		s.lg.Debug("malformed message", zap.String("endpoint", endpoint), zap.Error(err))
		return
	}
	ps := s.pubs[m.Publisher]
	if ps == nil || envelope.EpochAfter(m.Epoch, ps.epoch) {
		ps = s.newIncarnation(ps, m.Publisher, m.Epoch, endpoint)
	} else if m.Epoch != ps.epoch {
		s.stats.stale.Add(uint64(max(m.Count, 1)))
		return // sent before a restart and still in flight
	}
	now := s.io.now()
	ps.lastHeard = now
	switch m.Kind {
	case envelope.KindHello:
		// A HELLO goes only to a data connection that has not proved a
		// subscriber yet: a new one, or one whose READY failed. Prove it,
		// even if this incarnation was joined through an older connection.
		// Only the sync endpoint beside this data endpoint knows the
		// nonce: after a failover (the incarnation was joined through
		// another endpoint that went away) the handshake goes there.
		if l := s.linkFor(endpoint); l != nil && l != ps.link {
			ps.link = l
		}
		nonce := hex.EncodeToString(m.Payload)
		if nonce == ps.boundNonce {
			// A repeat of the HELLO whose nonce was accepted already (it
			// crossed the READY): the connection is proved, nothing to do.
			return
		}
		ps.nonce = nonce
		s.startHandshake(ps)
		return
	case envelope.KindAbort:
		ps.abort = string(m.Payload)
		s.lg.Warn("publisher gave the epoch up", zap.String("publisher", ps.id.Short()), zap.String("reason", ps.abort))
		return
	}
	if !ps.joined {
		// DATA, heartbeats and END can overtake the ACK: keep them, in
		// order, until the ACK says where the stream starts.
		s.hold(ps, m)
		return
	}
	s.process(ps, &m, now)
}

// startHandshake sends a READY quoting ps.nonce, unless one is in flight.
func (s *Subscriber) startHandshake(ps *pubState) {
	if ps.handshaking || ps.link == nil || ps.nonce == "" || ps.finished {
		return
	}
	ps.handshaking, ps.retryAt = true, time.Time{}
	s.io.handshake(ps, s.readyRequest(ps), ps.nonce)
}

// relink points the publishers known at endpoint to its current link: a
// publisher removed and added again (it failed in membership, then came
// back) keeps its streams but has a new link for handshakes and repairs.
func (s *Subscriber) relink(endpoint string) {
	l := s.linkFor(endpoint)
	if l == nil {
		return
	}
	for _, ps := range s.pubs {
		if ps.link != nil && ps.link != l && ps.link.eps.Pub == endpoint {
			ps.link = l
		}
	}
}

// newIncarnation starts tracking a publisher, or a restarted one.
func (s *Subscriber) newIncarnation(old *pubState, id envelope.ID, epoch uint64, endpoint string) *pubState {
	ps := &pubState{id: id, epoch: epoch, link: s.linkFor(endpoint), streams: make(map[string]*topicStream), restarted: old != nil}
	if old != nil {
		s.stats.restarts.Add(1)
		s.lg.Warn("publisher restarted", zap.String("publisher", id.Short()), zap.Uint64("old_epoch", old.epoch), zap.Uint64("epoch", epoch))
		s.emit(Event{Type: EventRestart, Publisher: id, Epoch: epoch})
		s.drainOld(old, s.io.now())
	}
	s.pubs[id] = ps
	return ps
}

// retire gives up whatever an old incarnation still misses: its history
// died with it.
func (s *Subscriber) retire(old *pubState) {
	if !old.finished {
		s.abandon(old, recovery.CausePublisherRestart, s.io.now())
	}
	s.retireState(old.id, old.epoch)
	for _, ts := range old.streams {
		s.retired.add(ts.st.Stats())
	}
}

// abandon gives up an incarnation that ended without END (it restarted,
// or went silent): every stream reports what it knows is missing, then
// the rest, which nobody can know any more, as an open-ended loss (To 0).
func (s *Subscriber) abandon(ps *pubState, cause recovery.Cause, now time.Time) {
	for _, ts := range ps.streamsInOrder() {
		s.abandonStream(ts, cause, now)
	}
	ps.finished, ps.ended = true, true
}

// abandonStream gives up one stream: what it knows is missing, and,
// unless END named its last sequence, the unknown rest (To 0).
func (s *Subscriber) abandonStream(ts *topicStream, cause recovery.Cause, now time.Time) {
	delete(s.repair, ts)
	ts.probeID = 0
	if ts.st.Finished() || ts.abandoned {
		return
	}
	ts.abandoned = true
	ts.st.Abandon(cause, now) // what is known missing
	if ts.ended {
		return // END named its last sequence: nothing unknown is left
	}
	ts.ended = true
	ps := ts.ps
	s.stats.unknownTails.Add(1)
	s.evid.unknownTail(&s.evidMu, cause)
	s.lg.Warn("messages after the last one received are unknown", zap.String("publisher", ps.id.Short()), zap.Uint64("epoch", ps.epoch),
		zap.String("topic", ts.topic), zap.Uint64("from", ts.st.Next()), zap.Stringer("cause", cause))
	s.emit(Event{Type: EventLoss, Publisher: ps.id, Epoch: ps.epoch, Topic: ts.topic, From: ts.st.Next(), To: 0, OpenEnded: true, Cause: cause.String()})
}

// hold keeps a copy of m until the ACK says where the streams start.
func (s *Subscriber) hold(ps *pubState, m envelope.Message) {
	if (m.Kind == envelope.KindData || m.Kind == envelope.KindMulti) && ps.heldRecords+int(m.Count) > s.cfg.MaxHeld {
		ps.overflowed = true // the stream sees the gap and repairs it
		return
	}
	ps.held = append(ps.held, cloneMessage(m))
	ps.heldRecords += max(int(m.Count), 1)
}

// cloneMessage copies what m aliases into one allocation of its own.
func cloneMessage(m envelope.Message) envelope.Message {
	b := make([]byte, 0, len(m.Topic)+len(m.Index)+len(m.Payload))
	b = append(append(append(b, m.Topic...), m.Index...), m.Payload...)
	t, i := len(m.Topic), len(m.Topic)+len(m.Index)
	m.Topic, m.Payload = b[:t:t], b[i:]
	if m.Index != nil {
		m.Index = b[t:i:i]
	}
	return m
}

// process handles DATA, HEARTBEAT and END of a joined publisher.
func (s *Subscriber) process(ps *pubState, m *envelope.Message, now time.Time) {
	switch m.Kind {
	case envelope.KindData:
		ts := s.dataStream(ps, m.Topic)
		if ts == nil {
			return
		}
		ts.time = m.Time
		if m.Flags&envelope.FlagReplay != 0 {
			// The history a catch-up feeds (protocol 1.7): replayed
			// records, counted as such.
			ts.catchUpTo, ps.fed = 0, true
			for seq, payload := range m.Records() {
				ts.st.Replay(seq, payload, now)
			}
			// The feed is in order and comes to the stream's gaps: a FETCH
			// of one of them on the recovery budget must not time out
			// while the records before it still arrive (a rejoin's feed
			// starts where the furthest-behind topic stands).
			ts.st.Feeding(now)
			return
		}
		if ts.catchUpTo == 0 && ts.st.InOrder(m.Seq) {
			ts.data = m // every record is delivered in turn: the message goes with the first
		}
		for seq, payload := range m.Records() {
			if ts.aheadOfHistory(seq) {
				continue // the history brings it again, in order
			}
			if seq > ts.catchUpTo {
				ts.catchUpTo = 0 // published after the join: the catch-up is behind it
			}
			ts.st.Live(seq, payload, now)
		}
		ts.data = nil
	case envelope.KindMulti:
		s.processMulti(ps, m, now)
	case envelope.KindLoss:
		s.processLoss(ps, m, now)
	case envelope.KindHeartbeat, envelope.KindEnd:
		table, _ := envelope.ParseTable(m.Payload) // Decode validated it
		deferred := false
		for _, e := range table {
			s.evid.sawTopic(&s.evidMu, e.Topic)
			if !s.wants(e.Topic) {
				continue
			}
			ts := s.stream(ps, e.Topic, 1, 0)
			ts.heard = max(ts.heard, e.Seq)
			if m.Kind == envelope.KindHeartbeat && ts.catchUpTo > 0 && !ps.fed {
				// No heartbeat addresses a connection being fed the
				// history: one before the first replayed record went out
				// before the publisher took the connection off the live
				// stream, and the feed brings what its table lists. Taken
				// for a gap, the history would be fetched as well as fed.
				// Once the feed began, a heartbeat comes only after it:
				// a topic it brought nothing of has a gap to repair.
				continue
			}
			if s.replayingHeld && ts.catchUpTo > 0 {
				deferred = true // the catch-up brings the history, then END again
				continue
			}
			ts.catchUpTo = 0
			if m.Kind == envelope.KindEnd {
				ts.ended = true
				ts.st.End(e.Seq, now)
			} else {
				ts.st.Heartbeat(e.Seq, now)
			}
		}
		if m.Kind == envelope.KindEnd && !deferred {
			ps.ended = true
			s.checkEnd(ps)
		}
	}
}

// checkEnd reports END once every stream of an ended publisher delivered
// or reported lost everything up to its final sequence, then says goodbye
// so the publisher can close without waiting.
func (s *Subscriber) checkEnd(ps *pubState) {
	if !ps.ended || ps.finished {
		return
	}
	for _, ts := range ps.streams {
		if ts.ended && !ts.st.Finished() && !mutation.Is(mutation.OKWithGap) {
			return
		}
	}
	for _, old := range s.old {
		if old.id == ps.id {
			return // the job is not done while an earlier epoch is still being repaired
		}
	}
	ps.finished = true
	if ps.link != nil && ps.boundNonce != "" {
		// Before the event: a handler that closes the Subscriber on END
		// must not stop the bye from starting.
		s.sendBye(ps)
	}
	ev := Event{Type: EventEnd, Publisher: ps.id, Epoch: ps.epoch}
	if ps.abort != "" {
		ev.Cause, ev.Err = EndQuorumFailed, fmt.Errorf("coord: the publisher gave the epoch up: %s", ps.abort)
	}
	s.emit(ev)
}

func (s *Subscriber) wants(topic string) bool { return envelope.MatchesAny(s.cfg.Subscribe, topic) }

func (s *Subscriber) onTick(now time.Time) {
	// Answers already received count before any deadline is judged: on a
	// busy machine this goroutine, not the publisher, may be what is late,
	// and the select above picks the tick as readily as a pending answer.
	for n := len(s.results); n > 0; n-- {
		s.onResult(<-s.results)
	}
	s.tickRepairs = s.repairsInOrder(s.tickRepairs)
	for _, ts := range s.tickRepairs {
		if ts.catchUpTo > 0 || !ts.ps.repairable() {
			// A feed was granted and its first record has not come yet;
			// or the publisher cannot be asked now (no data connection,
			// or a new one whose ACK has not named where to repair, as
			// in a failover): a repair must not run out of time while
			// nobody can answer it. PublisherTimeout still ends a
			// publisher that stays silent.
			ts.st.Feeding(now)
		}
		if d, ok := ts.st.Deadline(); ok && !now.Before(d) {
			ts.st.Tick(now)
		}
	}
	s.drainTick(now)
	s.checkConnectTimeout(now)
	s.tickPubs = s.pubsInOrder(s.tickPubs)
	for _, ps := range s.tickPubs {
		if !ps.retryAt.IsZero() && !now.Before(ps.retryAt) {
			s.startHandshake(ps)
		}
		// After END only repairs are left. A publisher that serves them
		// is heard (a replayed record counts); when none brings a record
		// for the timeout, the gaps left are given up together
		// (repairsGone).
		// A restarted incarnation this subscriber did not manage to join
		// is followed all the same: it owes every record of it.
		if (ps.joined || ps.restarted) && !ps.finished && s.cfg.PublisherTimeout > 0 && now.Sub(ps.lastHeard) >= s.cfg.PublisherTimeout {
			if ps.ended && ps.joined {
				s.repairsGone(ps, now)
			} else {
				s.publisherGone(ps, now)
			}
		}
		s.checkEnd(ps)
	}
	// Summing visits every stream: with thousands of topics, doing it
	// every tick cost a busy subscriber half its time.
	if now.Sub(s.statsAt) >= streamStatsEvery {
		s.statsAt = now
		s.refreshStreamStats()
	}
}

// streamStatsEvery is how often run refreshes the Stats() counters it
// sums over the streams.
const streamStatsEvery = 250 * time.Millisecond

// publisherGone ends an incarnation nothing was heard from for
// PublisherTimeout: its streams report what they miss, known and unknown,
// and the publisher ends with cause publisher-gone.
func (s *Subscriber) publisherGone(ps *pubState, now time.Time) {
	s.lg.Warn("publisher gone: nothing received from it", zap.String("publisher", ps.id.Short()),
		zap.Uint64("epoch", ps.epoch), zap.Duration("for", now.Sub(ps.lastHeard)))
	if !ps.joined {
		// A restarted incarnation that went away before this subscriber
		// could join it: all of it was owed (its streams start at 1).
		// What arrived is delivered, and what its tables name is
		// reported lost, rather than dropped with the held messages.
		ps.joined = true
		held := ps.held
		ps.held, ps.heldRecords = nil, 0
		for i := range held {
			s.process(ps, &held[i], now)
		}
		if ps.finished {
			return // END was among them, and nothing is missing: it ended
		}
	}
	s.abandon(ps, recovery.CausePublisherGone, now)
	s.emit(Event{Type: EventEnd, Publisher: ps.id, Epoch: ps.epoch, Cause: EndPublisherGone,
		Err: fmt.Errorf("coord: nothing received from publisher %s for %v", ps.id.Short(), s.cfg.PublisherTimeout)})
}

// repairsGone gives up every gap of an incarnation that sent END but
// answered no repair for PublisherTimeout (its recovery endpoint is gone,
// or refuses everything). Each gap would otherwise be given up on its
// own after RepairTimeout, and one slow consumer's hundreds of small gaps
// would keep the job running for hundreds of timeouts. The gaps are
// reported with cause timeout (the repairs made no progress); the END
// stays a plain END: the publisher did end.
//
// It runs at every tick until the incarnation finishes (an earlier epoch
// still being repaired holds it back), so it logs only when it gives
// something up.
func (s *Subscriber) repairsGone(ps *pubState, now time.Time) {
	gaveUp := 0
	for _, ts := range ps.streamsInOrder() {
		if ts.ended && !ts.st.Finished() {
			s.abandonStream(ts, recovery.CauseTimeout, now)
			gaveUp++
		}
	}
	if gaveUp > 0 {
		s.lg.Warn("publisher answers no repair after END: gave the gaps up", zap.String("publisher", ps.id.Short()),
			zap.Uint64("epoch", ps.epoch), zap.Int("streams", gaveUp), zap.Duration("for", now.Sub(ps.lastHeard)))
	}
	s.checkEnd(ps)
}

// Shutdown leaves the gossip cluster gracefully (publishers stop counting
// this subscriber at once rather than after the failure timeout), bounded
// by ctx, then closes as Close does. Without gossip it is Close.
// Idempotent; safe from the Handler.
func (s *Subscriber) Shutdown(ctx context.Context) error {
	var err error
	if s.cluster != nil && !s.closed.Load() {
		err = s.cluster.close(ctx) // first: discovery must not add publishers to a closing Subscriber
	}
	if cerr := s.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

// Close stops the Subscriber at once: it leaves the gossip cluster
// without announcing it (peers see a failure), stops every connection and
// waits for the Subscriber's goroutines. The Handler is not called after
// Close returns. Idempotent, and safe from the Handler itself: the
// current Handler call then finishes after Close returned, and no other
// follows. Every step runs even if an earlier one fails or panics; Close
// returns those failures and panics (a *StepPanicError for a panic), nil
// when there were none, and every call returns the first call's result.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		var steps releaseSteps
		s.closed.Store(true)
		steps.do("stop gossip", func() error {
			if s.cluster != nil {
				s.cluster.shutdown()
			}
			return nil
		})
		steps.do("cancel the subscriber's work", func() error { s.cancel(); return nil })
		steps.do("stop the subscriber's goroutines", s.stopGoroutines)
		var st SubscriberStats
		steps.do("count what was received", func() error { s.refreshStreamStats(); st = s.Stats(); return nil })
		steps.do("end the job", func() error { s.job.close(st); return nil })
		if s.ckpt != nil {
			steps.do("write the checkpoints", func() error { s.flushCheckpoints(); return nil })
			steps.do("close the checkpoints", s.ckpt.close)
		}
		steps.do("close the SUB socket", func() error { s.sub.Close(); return nil })
		steps.do("close the publisher links", s.closeLinks)
		// Again, in case an earlier step was the one that failed: each of
		// these is idempotent.
		steps.do("wait for the subscriber's goroutines", func() error {
			_ = s.stopGoroutines()
			s.job.close(st) // releases Done's waiters
			s.sub.Close()
			return s.closeLinks()
		})
		s.closeErr = steps.err()
	})
	return s.closeErr
}

// stopGoroutines ends what the Subscriber's goroutines wait on and waits
// for them. From the Handler, run is this goroutine: Wait skips it.
func (s *Subscriber) stopGoroutines() error {
	s.cancel()
	s.g.Stop()
	s.g.Wait()
	return nil
}

func (s *Subscriber) closeLinks() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		l.close()
	}
	return nil
}

func (s *Subscriber) String() string { return fmt.Sprintf("subscriber %s", s.cfg.ID) }
