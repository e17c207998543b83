package coord

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"syscall"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/internal/sim"
	"github.com/syncmq/syncmq/internal/simdisk"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/journal"
)

// simPub is a publisher node: one process that may crash and restart,
// each incarnation a real *Publisher (a new epoch) without sockets.
type simPub struct {
	w    *world
	name string
	id   envelope.ID
	inc  int        // incarnations started
	p    *Publisher // nil while down
	sock *simPubSocket
	rs   runState

	passTimer *sim.Timer
	spins     int

	// The producer of the current incarnation.
	toPublish int
	credit    float64           // records the producer may offer now
	accepted  map[string]uint64 // per topic, last sequence accepted
	producing *sim.Timer
	ending    bool // Shutdown began
	endTimer  *sim.Timer
	deadline  *sim.Timer
	shutAt    time.Time

	done    bool  // the job ended: the last incarnation's Shutdown returned
	outcome error // what it returned

	epochs []*simEpoch  // every incarnation's truth, in order
	all    []*Publisher // every incarnation, for the totals
	// disk holds the journal's directory, with a journal; store is the
	// current incarnation's.
	disk      *simdisk.Disk
	store     retained
	tickTimer *sim.Timer
	// powerLost: a power loss may have taken batches the journal had
	// accepted without syncing, so a beyond-retention loss is not judged.
	powerLost bool
	// damaged: a bit of a segment flipped; the journal reports the
	// records it cannot read back as beyond retention, so such a loss is
	// not judged against evictions.
	damaged bool
	// fills and flips count the disk faults that took effect.
	fills, flips int
	// pendingClose holds connections the subscriber closed while the
	// network could not tell the publisher.
	pendingClose []*simConn
}

// simEpoch is what one incarnation published: the truth the checker
// holds subscribers to.
type simEpoch struct {
	epoch    uint64
	accepted map[string]uint64
	finals   invariant.Finals // the END table; nil if it never ended
	crashed  bool
	// quorumFailed: the quorum timed out under policy fail; syncpub exits
	// 3 whatever Shutdown says.
	quorumFailed bool
	joined       map[string]map[string]uint64 // subscriber -> where each topic stood at its first join
	outcome      error
	evicted      map[string]uint64 // per topic, the highest sequence the history let go (beyond-retention is true of it)
	store        retained
	durable      bool // store is a journal
	// acked is, per topic, the last sequence the journal had accepted
	// when a power loss took the incarnation under SyncAlways: the
	// journal promised to keep it, and the next incarnation must.
	acked map[string]uint64
}

func newSimPub(w *world, name string) *simPub {
	var id envelope.ID
	for i := range id {
		id[i] = byte(w.rnd.Uint32())
	}
	sp := &simPub{w: w, name: name, id: id}
	if w.params.journal {
		sp.disk = simdisk.New()
		_ = sp.disk.MkdirAll("/data", 0o755) // as an operator would, before the first run
		_ = sp.disk.SyncDir("/")
	}
	return sp
}

func (sp *simPub) endpoints() Endpoints {
	return Endpoints{Pub: "tcp://" + sp.name + ":5561", Sync: "tcp://" + sp.name + ":5562"}
}

func (sp *simPub) status() string {
	if sp.p == nil {
		return sp.name + " down"
	}
	sp.p.mu.Lock()
	defer sp.p.mu.Unlock()
	st := sp.p.core.endState(sp.w.sim.Now())
	return fmt.Sprintf("%s inc %d phase %v waiting %v", sp.name, sp.inc, sp.p.core.phase, st.waiting)
}

func (sp *simPub) epoch() *simEpoch { return sp.epochs[len(sp.epochs)-1] }

// config is the PublisherConfig of every incarnation.
func (sp *simPub) config() PublisherConfig {
	prm := sp.w.params
	cfg := DefaultPublisherConfig()
	cfg.ID = sp.id
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = sp.endpoints().Pub, sp.endpoints().Sync, "tcp://"+sp.name+":5563"
	cfg.Expect = prm.expect
	cfg.QuorumTimeout, cfg.QuorumPolicy = prm.quorumTimeout, prm.quorumPolicy
	cfg.HeartbeatInterval = prm.heartbeat
	cfg.RepairWindow = prm.repairWindow
	cfg.MaxBatchRecords = prm.maxBatchRecords
	cfg.History.MaxMessages = prm.historyMessages
	cfg.History.MaxBytes = 1 << 20
	cfg.Linger = 0
	if prm.journal {
		cfg.DataDir = "/data/" + sp.name
		cfg.Journal.FS, cfg.Journal.Now, cfg.Journal.ManualTick = sp.disk, sp.w.sim.Now, true
		cfg.Journal.Sync, cfg.Journal.SegmentBytes = prm.fsync, prm.segmentBytes
		cfg.Journal.Retention.MaxMessages = int64(prm.historyMessages)
	}
	cfg.SlowPolicy = prm.slowPolicy
	cfg.Wire.QueueBytes, cfg.Wire.MaxQueueBytes = prm.queueBytes, prm.maxQueueBytes
	return cfg
}

// start starts an incarnation: a new epoch, a fresh history.
func (sp *simPub) start() {
	w := sp.w
	sp.inc++
	cfg := sp.config()
	cfg.Epoch = envelope.EpochAt(w.sim.Now())
	if n := len(sp.epochs); n > 0 && cfg.Epoch <= sp.epochs[n-1].epoch {
		cfg.Epoch = sp.epochs[n-1].epoch + 1
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	store, err := openStore(&cfg)
	if err != nil && errors.Is(err, syscall.ENOSPC) && sp.disk.Capacity() != simdisk.Unlimited {
		// As syncpub does: it exits non-zero naming the full disk, and is
		// started again later.
		w.tracef("%s: incarnation %d refuses to start: %v", sp.name, sp.inc, err)
		sp.inc--
		w.sim.After(time.Duration(100+w.diskRnd.IntN(3000))*time.Millisecond, sp.name+" starts again", sp.start)
		return
	}
	if err != nil {
		w.check.Failf("%s: incarnation %d cannot open its store: %v", sp.name, sp.inc, err)
		sp.done = true
		return
	}
	sp.store = store
	sp.checkAcked(store)
	p := newPublisher(cfg, store, w.sim.Now)
	sp.sock = &simPubSocket{p: sp, inc: sp.inc}
	p.pub = sp.sock
	p.sync = simEndpoint{cfg.SyncBind}
	if p.rec, err = newRecoveryServer(p, store); err != nil {
		panic(err)
	}
	p.rec.srv = simEndpoint{cfg.RecoveryBind}
	p.rec.wait = func(context.Context, time.Duration) error { return errReplayBudget }
	p.startCore(w.sim.Now())
	p.core.randNonce = w.nonce
	sp.p, sp.rs = p, runState{}
	sp.all = append(sp.all, p)
	sp.ending, sp.shutAt = false, time.Time{}
	sp.accepted = make(map[string]uint64)
	sp.toPublish = w.params.records
	if sp.inc > 1 {
		sp.toPublish = 1 + w.rnd.IntN(w.params.records/4+1)
	}
	sp.epochs = append(sp.epochs, &simEpoch{epoch: cfg.Epoch, accepted: sp.accepted, joined: make(map[string]map[string]uint64),
		evicted: make(map[string]uint64), store: store, durable: sp.disk != nil})
	w.tracef("%s starts incarnation %d, epoch %d, publishing %d", sp.name, sp.inc, cfg.Epoch, sp.toPublish)
	sp.tickJournal()
	sp.produce()
	sp.kick()
}

// checkAcked holds the journal to SyncAlways's promise across a power
// loss: every record it had accepted is still published in the store the
// next incarnation opened. A flipped bit may destroy some (reported as
// damage), so a damaged disk is not judged.
func (sp *simPub) checkAcked(store retained) {
	if sp.damaged {
		return
	}
	for _, e := range sp.epochs {
		for topic, acked := range e.acked {
			if got := store.bounds(e.epoch, topic).published; got < acked {
				sp.w.check.Failf("%s: epoch %d %s: the journal accepted through %d under SyncAlways, but after a power loss it holds through %d",
					sp.name, e.epoch, topic, acked, got)
			}
		}
		e.acked = nil // judged once, by the incarnation after the loss
	}
}

// tickJournal does the journal's background work (seals, syncs) every
// so often, as its goroutine would.
func (sp *simPub) tickJournal() {
	js, ok := sp.store.(*journalStore)
	if !ok || sp.p == nil {
		return
	}
	if err := js.j.Tick(sp.w.sim.Now()); err != nil {
		sp.w.check.Failf("%s: journal tick: %v", sp.name, err)
		return
	}
	inc := sp.inc
	sp.tickTimer = sp.w.sim.After(time.Duration(50+sp.w.rnd.IntN(200))*time.Millisecond, "", func() {
		if sp.inc == inc {
			sp.tickJournal()
		}
	})
}

// kick runs a pass of the publisher's shell now and schedules the next.
func (sp *simPub) kick() {
	if sp.p == nil {
		return
	}
	now := sp.w.sim.Now()
	next := sp.p.pass(sp.p.hard, now, &sp.rs)
	sp.noteEvictions()
	if !next.After(now) {
		sp.spins++
		if sp.spins > 10000 {
			sp.w.check.Failf("%s: the publisher's run loop spins: its next pass is always due at once", sp.name)
			return
		}
		next = now.Add(time.Microsecond)
	} else {
		sp.spins = 0
	}
	if sp.passTimer == nil || !sp.passTimer.When().Equal(next) || !sp.passTimer.Pending() {
		sp.passTimer.Stop()
		sp.passTimer = sp.w.sim.At(next, "", sp.kick)
	}
	sp.checkEnd()
}

// kickSoon runs a pass as a new event: what calls it may be inside one.
func (sp *simPub) kickSoon() {
	if sp.p == nil {
		return
	}
	inc := sp.inc
	sp.w.sim.After(0, "", func() {
		if sp.inc == inc {
			sp.kick()
		}
	})
}

// noteEvictions records how far the history let each topic go: a loss
// reported as beyond-retention must be of records it had let go.
func (sp *simPub) noteEvictions() {
	epochs := sp.epochs[len(sp.epochs)-1:]
	if sp.disk != nil {
		epochs = sp.epochs // the journal serves them all
	}
	for _, e := range epochs {
		sp.noteEvicted(e)
	}
}

func (sp *simPub) noteEvicted(e *simEpoch) {
	for topic := range e.accepted {
		b := sp.store.bounds(e.epoch, topic)
		if b.known && b.first > 1 {
			e.evicted[topic] = max(e.evicted[topic], b.first-1)
		} else if b.known && b.first == 0 && b.published > 0 {
			e.evicted[topic] = max(e.evicted[topic], b.published)
		}
	}
}

// produce offers the next records, rate per millisecond, until the
// incarnation published its share; then it shuts down.
func (sp *simPub) produce() {
	w := sp.w
	if sp.p == nil || sp.ending {
		return
	}
	p := sp.p
	sp.credit = min(sp.credit+w.params.rate, w.params.rate+64)
	for ; sp.credit >= 1 && sp.toPublish > 0; sp.credit-- {
		n := sp.published()
		topic := w.topic(n % w.params.topics)
		seq := sp.accepted[topic] + 1
		payload := w.payload(invariant.Stream{Publisher: sp.id.String(), Epoch: p.cfg.Epoch, Topic: topic}, seq)
		p.mu.Lock()
		got, err := p.core.publish(topic, payload)
		p.noteChangeLocked()
		p.mu.Unlock()
		if err != nil && err != errWaitQuorum && err != errWaitSpace && err != errPaused {
			// The quorum failed: syncpub ends the epoch (ABORT, END) and
			// exits 3.
			w.tracef("%s: publishing failed: %v", sp.name, err)
			sp.epoch().quorumFailed = true
			sp.toPublish = 0
			break
		}
		if err != nil {
			break // waiting for the quorum or for room: try again later
		}
		if got != seq {
			w.check.Failf("%s: Publish gave %s sequence %d, want %d", sp.name, topic, got, seq)
		}
		sp.accepted[topic] = got
		sp.toPublish--
	}
	sp.kick()
	if sp.toPublish == 0 {
		sp.shutdown()
		return
	}
	inc := sp.inc
	sp.producing = w.sim.After(time.Millisecond, "", func() {
		if sp.inc == inc {
			sp.produce()
		}
	})
}

func (sp *simPub) published() int {
	n := 0
	for _, v := range sp.accepted {
		n += int(v)
	}
	return n
}

// shutdown begins Shutdown: the rest and END go out, then the publisher
// waits for its subscribers' BYEs, at most drainTimeout.
func (sp *simPub) shutdown() {
	w := sp.w
	sp.ending, sp.shutAt = true, w.sim.Now()
	sp.p.locked(func(c *pubCore) { c.shutdown() })
	w.tracef("%s shuts down: %d published", sp.name, sp.published())
	inc := sp.inc
	sp.deadline = w.sim.After(w.params.drainTimeout, "drain timeout", func() {
		if sp.inc == inc && sp.p != nil {
			sp.finish(true)
		}
	})
	sp.kick()
}

// checkEnd finishes the job once the end settled, as awaitEnd does.
func (sp *simPub) checkEnd() {
	if !sp.ending || sp.p == nil {
		return
	}
	p := sp.p
	p.mu.Lock()
	st := p.core.endState(sp.w.sim.Now())
	p.mu.Unlock()
	if st.settled {
		sp.finish(false)
		return
	}
	if !st.next.IsZero() && (sp.endTimer == nil || sp.endTimer.When() != st.next) {
		sp.endTimer.Stop()
		inc := sp.inc
		sp.endTimer = sp.w.sim.At(st.next, "", func() {
			if sp.inc == inc {
				sp.checkEnd()
			}
		})
	}
}

// finish ends the job: Shutdown returns (ctx ended if timedOut) and the
// publisher releases everything.
func (sp *simPub) finish(timedOut bool) {
	p := sp.p
	p.mu.Lock()
	ended := p.core.phase == phaseEnded
	st := p.core.endState(sp.w.sim.Now())
	final := p.core.final
	p.mu.Unlock()
	var err error
	switch {
	case timedOut && !ended:
		err = context.DeadlineExceeded
	case timedOut:
		err = st.err(context.DeadlineExceeded)
	default:
		err = st.err(nil)
	}
	e := sp.epoch()
	if ended {
		e.finals = make(invariant.Finals, len(final))
		for _, t := range final {
			e.finals[t.Topic] = t.Seq
		}
	}
	e.outcome = err
	sp.recordJoins()
	sp.w.tracef("%s finished: %v", sp.name, err)
	sp.stopTimers()
	p.release(context.Background())
	sp.p = nil
	if sp.disk != nil && sp.w.params.rerun && sp.inc == 1 {
		// The next job on the same directory: what subscribers still
		// repair of this epoch, the new incarnation serves.
		sp.w.sim.After(time.Duration(sp.w.rnd.IntN(3000))*time.Millisecond, sp.name+" runs again", sp.start)
		return
	}
	sp.done, sp.outcome = true, err
}

// recordJoins notes where each subscriber that joined this epoch first
// stood, for the checker.
func (sp *simPub) recordJoins() {
	e := sp.epoch()
	sp.p.mu.Lock()
	defer sp.p.mu.Unlock()
	for id, s := range sp.p.core.subs {
		e.joined[id] = maps.Clone(s.firstTable)
	}
}

func (sp *simPub) stopTimers() {
	sp.passTimer.Stop()
	sp.producing.Stop()
	sp.endTimer.Stop()
	sp.deadline.Stop()
	sp.tickTimer.Stop()
	sp.passTimer, sp.producing, sp.endTimer, sp.deadline, sp.tickTimer = nil, nil, nil, nil, nil
}

// crash kills the incarnation: no END, nothing more sent; what was
// written still reaches the subscribers (the kernel sends it).
func (sp *simPub) crash() {
	if sp.p == nil || sp.done {
		return
	}
	w := sp.w
	w.tracef("%s crashes", sp.name)
	e := sp.epoch()
	e.crashed = true
	sp.recordJoins()
	sp.stopTimers()
	sp.sock.closed = true
	for _, c := range append([]*simConn(nil), sp.sock.conns...) {
		c.cut(false, "publisher crashed")
	}
	if sp.disk != nil {
		opts := simdisk.CrashOptions{Kind: simdisk.ProcessCrash}
		if w.params.powerLoss && w.rnd.IntN(2) == 0 {
			opts = simdisk.RandomPowerLoss(w.rnd)
			sp.powerLost = sp.powerLost || w.params.fsync != journal.SyncAlways
			if w.params.fsync == journal.SyncAlways {
				e.acked = make(map[string]uint64, len(e.accepted))
				for topic := range e.accepted {
					e.acked[topic] = e.store.bounds(e.epoch, topic).published
				}
			}
		}
		w.tracef("%s: %s", sp.name, opts.Kind)
		sp.disk.Crash(opts)
	} else {
		_ = e.store.close()
	}
	sp.p = nil
	w.sim.After(time.Duration(100+w.rnd.IntN(3000))*time.Millisecond, sp.name+" restarts", sp.start)
}

// accept opens a data connection from sub if this node is up and
// reachable; nil otherwise.
func (sp *simPub) accept(sub *simSub, endpoint string, prefixes [][]byte) *simConn {
	w := sp.w
	if sp.p == nil || sp.done || !w.reachable(sp.name, sub.name) {
		return nil
	}
	w.nextID++
	c := &simConn{w: w, id: wire.ConnID(w.nextID), pub: sp, pubInc: sp.inc, sub: sub, subRun: sub.run, endpoint: endpoint,
		prefixes: prefixes, pubOpen: true, subOpen: true}
	sp.sock.conns = append(sp.sock.conns, c)
	// The connection and its subscriptions reach the publisher one
	// delay later, in order.
	inc := sp.inc
	w.sim.After(w.delay(), "", func() {
		if sp.inc != inc || sp.p == nil || !c.pubOpen {
			return
		}
		sp.p.onPeerEvent(wire.PeerEvent{Type: wire.PeerConnected, Conn: c.id, Remote: sub.name})
		for _, pr := range prefixes {
			sp.p.onPeerEvent(wire.PeerEvent{Type: wire.PeerSubscribed, Conn: c.id, Prefix: pr})
		}
		sp.kick()
	})
	return c
}

// connGone tells the publisher a connection ended, as the socket does:
// one cut as a slow consumer is reported slow first.
func (sp *simPub) connGone(c *simConn, slow bool) {
	if c.pubInc != sp.inc || sp.sock == nil {
		return
	}
	sp.sock.remove(c)
	if sp.p != nil {
		if slow {
			sp.p.onPeerEvent(wire.PeerEvent{Type: wire.PeerSlow, Conn: c.id})
		}
		sp.p.onPeerEvent(wire.PeerEvent{Type: wire.PeerDisconnected, Conn: c.id})
		sp.kickSoon()
	}
}

// notifyClosed tells the publisher, once the network lets it, that the
// subscriber closed c.
func (sp *simPub) notifyClosed(c *simConn) {
	w := sp.w
	if !w.reachable(sp.name, c.sub.name) {
		sp.pendingClose = append(sp.pendingClose, c)
		return
	}
	w.sim.After(w.delay(), "", func() {
		if c.pubOpen {
			c.pubOpen = false
			c.pq, c.pqBytes = nil, 0
			c.slowCheck.Stop()
			sp.connGone(c, false)
		}
	})
}

// heal delivers what a partition held up.
func (sp *simPub) heal() {
	pending := sp.pendingClose
	sp.pendingClose = nil
	for _, c := range pending {
		sp.notifyClosed(c)
	}
	if sp.sock != nil {
		for _, c := range append([]*simConn(nil), sp.sock.conns...) {
			c.pump()
		}
	}
}

// request answers a sync request from sub; ok is false if this node
// cannot be reached.
func (sp *simPub) syncRequest(sub *simSub, req []byte) (reply [][]byte, ok bool) {
	if sp.p == nil || sp.done || !sp.w.reachable(sp.name, sub.name) {
		return nil, false
	}
	_ = sp.p.handleSync(context.Background(), wire.Request{Frames: [][]byte{req}, Peer: wire.Peer{Remote: sub.name}}, func(f ...[]byte) error {
		reply = copyFrames(f)
		return nil
	})
	sp.kickSoon()
	return reply, true
}

// fetchRequest answers a recovery request from sub: every reply, in
// order; ok is false if this node cannot be reached.
func (sp *simPub) fetchRequest(sub *simSub, req []byte) (replies [][][]byte, ok bool) {
	if sp.p == nil || sp.done || !sp.w.reachable(sp.name, sub.name) {
		return nil, false
	}
	_ = sp.p.rec.handle(context.Background(), wire.Request{Frames: [][]byte{req}, Peer: wire.Peer{Remote: sub.name}}, func(f ...[]byte) error {
		replies = append(replies, copyFrames(f))
		return nil
	})
	return replies, true
}

// checkBeyondRetention holds a beyond-retention loss to the truth: the
// history had let every record of its range go. A memory history says
// exactly what it evicted; a journal may also have lost records to a
// crash, which the simulator does not follow record by record.
func (w *world) checkBeyondRetention(sub string, ev Event) {
	for _, p := range w.pubs {
		if p.id != ev.Publisher {
			continue
		}
		for _, e := range p.epochs {
			if e.epoch != ev.Epoch || e.durable && (p.powerLost || p.damaged) {
				continue
			}
			if p.p != nil {
				p.noteEvictions()
			}
			if ev.To > e.evicted[ev.Topic] {
				w.check.Failf("%s: loss %s %d-%d beyond-retention, but the history let go only up to %d",
					sub, ev.Topic, ev.From, ev.To, e.evicted[ev.Topic])
			}
		}
	}
}

func copyFrames(f [][]byte) [][]byte {
	out := make([][]byte, len(f))
	for i, b := range f {
		out[i] = append([]byte(nil), b...)
	}
	return out
}
