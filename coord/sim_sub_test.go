package coord

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/internal/sim"
	"github.com/syncmq/syncmq/internal/simdisk"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/handshake"
	"github.com/syncmq/syncmq/recovery"
)

// simSub is a subscriber node: one process that may crash, stall and
// restart (from its state directory if it has one), each run a real
// *Subscriber state machine without sockets or goroutines. Everything
// that reaches it (data, answers, ticks) waits its turn on the node's one
// CPU, which a stall stops.
type simSub struct {
	w    *world
	name string
	late bool // starts after publishing began
	run  int  // runs started
	s    *Subscriber

	conns     map[string]*simConn // by PUB endpoint: this run's data connection, if any
	dialing   map[string]*sim.Timer
	backoff   map[string]time.Duration
	lastRecv  map[*simConn]time.Time
	idleCheck map[*simConn]*sim.Timer

	inbox     []func() // inputs waiting for the CPU, in order
	busyUntil time.Time
	stalled   time.Time // the CPU does nothing until then
	cpu       *sim.Timer
	tick      *sim.Timer
	tickDue   bool

	fetchers map[*link]*simFetcher

	disk *simdisk.Disk // the state directory's, when stateful

	ends    map[envelope.ID]string // END per publisher: its cause ("" completed)
	exited  bool                   // the job finished and the run ended
	crashes int
}

// simFetcher is a link's fetcher: one request at a time, the queued jobs
// packed into one FETCH_MANY, as the real one does.
type simFetcher struct {
	queue []fetchJob
	busy  bool
}

func newSimSub(w *world, name string, late bool) *simSub {
	ss := &simSub{w: w, name: name, late: late}
	if w.params.stateful {
		ss.disk = simdisk.New()
		_ = ss.disk.MkdirAll("/state", 0o755)
		_ = ss.disk.SyncDir("/")
		w.check.Stateful(name)
	}
	return ss
}

func (ss *simSub) up() bool { return ss.s != nil }

// finished reports whether the run is done: it exited, or it never
// joined anything and every publisher's job is over (it waits for a
// publisher that will not come, as syncsub would).
func (ss *simSub) finished() bool {
	if ss.exited {
		return true
	}
	if ss.s == nil || ss.s.stats.handshakes.Load() > 0 {
		return false
	}
	for _, p := range ss.w.pubs {
		if !p.done {
			return false
		}
	}
	return true
}

func (ss *simSub) status() string {
	return fmt.Sprintf("%s run %d: ends %v, conns %d, inbox %d", ss.name, ss.run, ss.ends, len(ss.conns), len(ss.inbox))
}

// simIO is the subscriber's I/O on the simulated network.
type simIO struct {
	ss  *simSub
	run int
}

func (io simIO) now() time.Time { return io.ss.w.sim.Now() }

func (io simIO) handshake(ps *pubState, req []byte, nonce string) {
	ss := io.ss
	ss.request(ps.link.eps.Sync, req, func(reply [][]byte, err error) {
		ss.post(io.run, func() { ss.s.onResult(decodeAck(ps, nonce, reply, err)) })
	})
}

func (io simIO) bye(l *link, req []byte) {
	w := io.ss.w
	r, _ := handshake.DecodeReady(req)
	io.ss.request(l.eps.Sync, req, func(reply [][]byte, err error) {
		if err == nil && len(reply) == 1 {
			if _, err := handshake.DecodeReply(reply[0]); err == nil {
				w.byes[byeKey{io.ss.name, r.Epoch}] = true
			} else {
				w.tracef("%s: BYE refused: %v", io.ss.name, err)
			}
		}
	})
}

func (io simIO) fetch(l *link, job fetchJob) bool {
	f := io.ss.fetchers[l]
	if f == nil {
		f = &simFetcher{}
		io.ss.fetchers[l] = f
	}
	if len(f.queue) >= 1024 {
		return false
	}
	f.queue = append(f.queue, job)
	io.ss.w.sim.After(0, "", func() { io.ss.pumpFetch(io.run, l) })
	return true
}

// config is the SubscriberConfig of every run.
func (ss *simSub) config() SubscriberConfig {
	prm := ss.w.params
	var cfg SubscriberConfig
	cfg.ID = ss.name
	cfg.Handler = func(ev Event) {}
	cfg.Stream = recovery.DefaultStreamConfig()
	cfg.Stream.MaxHeldBytes = prm.heldBytes
	cfg.ConnectTimeout = -1 // runs restart and partitions last: the simulation judges losses, not reachability
	if prm.startEarliest {
		cfg.StartAt = StartAtEarliest
	}
	return cfg.withDefaults()
}

// start starts a run: a new Subscriber, connecting to every publisher.
func (ss *simSub) start() {
	w := ss.w
	ss.run++
	run := ss.run
	cfg := ss.config()
	cfg.Handler = func(ev Event) { ss.record(run, ev) }
	s := newSubscriber(cfg)
	s.io = simIO{ss, run}
	if ss.disk != nil {
		ck, err := openCheckpoints("/state/"+ss.name, ss.disk)
		if err != nil {
			w.check.Failf("%s run %d: its state directory does not open: %v", ss.name, run, err)
		} else {
			s.ckpt = ck
		}
	}
	ss.s = s
	ss.conns = make(map[string]*simConn)
	ss.dialing = make(map[string]*sim.Timer)
	ss.backoff = make(map[string]time.Duration)
	ss.lastRecv = make(map[*simConn]time.Time)
	ss.idleCheck = make(map[*simConn]*sim.Timer)
	ss.fetchers = make(map[*link]*simFetcher)
	ss.ends = make(map[envelope.ID]string)
	ss.inbox, ss.exited, ss.tickDue = nil, false, false
	w.tracef("%s starts run %d", ss.name, run)
	for _, p := range w.pubs {
		eps := p.endpoints()
		s.links[eps.Pub] = &link{eps: eps}
		ss.dial(eps.Pub)
	}
	ss.scheduleTick()
}

// record hands an event of run to the checker, and follows the ENDs the
// way syncsub does: the job is done when every publisher ended.
func (ss *simSub) record(run int, ev Event) {
	w := ss.w
	base := invariant.Event{Sub: ss.name, Run: run, Publisher: ev.Publisher.String(), Epoch: ev.Epoch, Topic: ev.Topic, At: w.sim.Now()}
	switch ev.Type {
	case EventMessage:
		base.Kind, base.Seq, base.Payload, base.Replay = invariant.Message, ev.Seq, ev.Payload, ev.Replay
	case EventLoss:
		base.Kind, base.From, base.To, base.Cause = invariant.Loss, ev.From, ev.To, ev.Cause
		w.tracef("%s: loss %s %d-%d %s", ss.name, ev.Topic, ev.From, ev.To, ev.Cause)
		if !lostCauses[ev.Cause] {
			w.check.Failf("%s: loss %s %d-%d with a cause no Stream reports: %q", ss.name, ev.Topic, ev.From, ev.To, ev.Cause)
		}
		switch ev.Cause {
		case recovery.CauseBeyondRetention.String():
			w.checkBeyondRetention(ss.name, ev)
		case recovery.CauseUnknown.String():
			// A publisher that claimed a complete replay which never came:
			// the simulated network loses nothing inside a connection, so
			// the publisher lied.
			w.check.Failf("%s: loss %s %d-%d of unknown cause: a replay said complete, and was not", ss.name, ev.Topic, ev.From, ev.To)
		}
	case EventJoined:
		base.Kind = invariant.Joined
		w.tracef("%s: joined epoch %d", ss.name, ev.Epoch)
	case EventEnd:
		base.Kind, base.Cause = invariant.End, ev.Cause
		ss.ends[ev.Publisher] = ev.Cause
		w.tracef("%s: end of epoch %d %q", ss.name, ev.Epoch, ev.Cause)
	default:
		return
	}
	w.check.Add(base)
}

// post queues fn for the CPU of run; nothing happens if that run is over.
func (ss *simSub) post(run int, fn func()) {
	if ss.s == nil || ss.run != run {
		return
	}
	ss.inbox = append(ss.inbox, fn)
	ss.wakeCPU(ss.w.sim.Now())
}

// wakeReader is told data may be readable at t.
func (ss *simSub) wakeReader(t time.Time) { ss.wakeCPU(t) }

func (ss *simSub) wakeCPU(t time.Time) {
	if ss.s == nil {
		return
	}
	t = latest(t, ss.busyUntil, ss.stalled)
	if ss.cpu != nil && !ss.cpu.When().After(t) {
		return
	}
	ss.cpu.Stop()
	run := ss.run
	ss.cpu = ss.w.sim.At(t, "", func() {
		ss.cpu = nil
		if ss.run == run {
			ss.step()
		}
	})
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// step runs the CPU: the inputs waiting first, then one data message; then
// it sleeps until the next thing to do.
func (ss *simSub) step() {
	w := ss.w
	now := w.sim.Now()
	if now.Before(ss.stalled) || now.Before(ss.busyUntil) {
		ss.wakeCPU(now)
		return
	}
	run := ss.run
	for len(ss.inbox) > 0 && ss.s != nil && ss.run == run {
		fn := ss.inbox[0]
		ss.inbox = ss.inbox[1:]
		fn()
		ss.settle()
	}
	if ss.s == nil || ss.run != run {
		return
	}
	c, next := ss.readable(now)
	if c == nil {
		if !next.IsZero() {
			ss.wakeCPU(next)
		}
		return
	}
	ss.read(c)
	ss.settle()
	if ss.s != nil && ss.run == run {
		ss.wakeCPU(ss.busyUntil)
	}
}

// settle ends a pass of the run loop; the job may be over then.
func (ss *simSub) settle() {
	if ss.s == nil {
		return
	}
	ss.s.settle()
	ss.checkExit()
}

// readable returns the connection with the earliest message that has
// arrived, or when the next arrives.
func (ss *simSub) readable(now time.Time) (*simConn, time.Time) {
	var best *simConn
	var next time.Time
	for _, ep := range ss.endpoints() {
		c := ss.conns[ep]
		if c == nil || !c.subOpen {
			continue
		}
		if !ss.w.reachable(c.pub.name, ss.name) {
			continue // frozen by a partition
		}
		if len(c.nq) == 0 {
			if c.fin {
				return c, now // EOF to read
			}
			continue
		}
		at := c.nq[0].arrive
		if !at.After(now) {
			if best == nil || at.Before(best.nq[0].arrive) {
				best = c
			}
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return best, next
}

func (ss *simSub) endpoints() []string {
	eps := make([]string, 0, len(ss.conns))
	for ep := range ss.conns {
		eps = append(eps, ep)
	}
	slices.Sort(eps)
	return eps
}

// read takes one message of c (or its EOF) and feeds it to the run.
func (ss *simSub) read(c *simConn) {
	w := ss.w
	if len(c.nq) == 0 { // EOF: the publisher closed it
		ss.disconnected(c, c.behind, "closed by the publisher")
		return
	}
	m := c.nq[0]
	c.nq[0] = simMsg{}
	c.nq = c.nq[1:]
	c.nqBytes -= m.size
	ss.lastRecv[c] = w.sim.Now()
	records := 1
	if dm, err := envelope.Decode(m.frames, envelope.Limits{}); err == nil && dm.Count > 1 {
		records = int(dm.Count)
	}
	ss.busyUntil = w.sim.Now().Add(time.Duration(records) * w.params.procCost)
	ss.s.onDelivery(wire.Delivery{Kind: wire.Message, Endpoint: c.endpoint, Frames: m.frames})
	c.pump() // room in the buffers
}

// disconnected ends c on the subscriber's side and redials.
func (ss *simSub) disconnected(c *simConn, behind bool, why string) {
	if ss.conns[c.endpoint] != c {
		return
	}
	delete(ss.conns, c.endpoint)
	delete(ss.lastRecv, c)
	ss.idleCheck[c].Stop()
	delete(ss.idleCheck, c)
	c.subClose(why)
	ss.s.onDelivery(wire.Delivery{Kind: wire.Disconnected, Endpoint: c.endpoint, Behind: behind})
	ss.redial(c.endpoint)
}

// dial connects to endpoint, or tries again after a back-off.
func (ss *simSub) dial(endpoint string) {
	w := ss.w
	p := w.pubAt(endpoint)
	c := p.accept(ss, endpoint, ss.prefixBytes())
	if c == nil {
		ss.redial(endpoint)
		return
	}
	ss.backoff[endpoint] = 0
	ss.conns[endpoint] = c
	ss.lastRecv[c] = w.sim.Now()
	ss.armIdle(c)
	run := ss.run
	ss.post(run, func() { ss.s.onDelivery(wire.Delivery{Kind: wire.Connected, Endpoint: endpoint}) })
}

func (ss *simSub) prefixBytes() [][]byte {
	var out [][]byte
	for _, p := range ss.s.prefixes() {
		out = append(out, []byte(p))
	}
	return out
}

// redial schedules a dial after the back-off (50 ms doubling to 2 s).
func (ss *simSub) redial(endpoint string) {
	d := max(2*ss.backoff[endpoint], 50*time.Millisecond)
	d = min(d, 2*time.Second)
	ss.backoff[endpoint] = d
	ss.dialing[endpoint].Stop()
	run := ss.run
	ss.dialing[endpoint] = ss.w.sim.After(d, "", func() {
		if ss.s != nil && ss.run == run && ss.conns[endpoint] == nil {
			ss.dial(endpoint)
		}
	})
}

// armIdle drops c when nothing arrived on it for the idle timeout, as
// the real SUB socket does to find half-open connections.
func (ss *simSub) armIdle(c *simConn) {
	idle := ss.s.cfg.Wire.IdleTimeout
	if idle <= 0 {
		return
	}
	run := ss.run
	at := ss.lastRecv[c].Add(idle)
	if len(c.nq) > 0 {
		// Data waits in the buffers: the socket's reader has it, so the
		// connection is not idle, however late the consumer reads.
		at = ss.w.sim.Now().Add(idle)
	}
	ss.idleCheck[c] = ss.w.sim.At(at, "", func() {
		if ss.s == nil || ss.run != run || ss.conns[c.endpoint] != c {
			return
		}
		if ss.w.sim.Now().Sub(ss.lastRecv[c]) >= idle && len(c.nq) == 0 {
			ss.post(run, func() { ss.disconnected(c, false, "idle timeout") })
			return
		}
		ss.armIdle(c)
	})
}

// scheduleTick runs the run loop's 20 ms tick.
func (ss *simSub) scheduleTick() {
	run := ss.run
	ss.tick = ss.w.sim.After(20*time.Millisecond, "", func() {
		if ss.s == nil || ss.run != run {
			return
		}
		if !ss.tickDue { // a ticker's channel holds one tick; the rest are dropped
			ss.tickDue = true
			ss.post(run, func() {
				ss.tickDue = false
				ss.s.onTick(ss.w.sim.Now())
			})
		}
		ss.scheduleTick()
	})
}

// request sends a sync request to endpoint and calls done with the reply,
// or with an error after the client's attempts timed out.
func (ss *simSub) request(endpoint string, req []byte, done func([][]byte, error)) {
	w := ss.w
	p := w.pubAtSync(endpoint)
	cfg := ss.s.cfg
	w.sim.After(w.delay(), "", func() {
		reply, ok := p.syncRequest(ss, req)
		if !ok {
			w.sim.After(time.Duration(cfg.HandshakeAttempts)*cfg.HandshakeTimeout, "", func() { done(nil, errUnreachable) })
			return
		}
		w.sim.After(w.delay(), "", func() {
			if !w.reachable(p.name, ss.name) {
				done(nil, errUnreachable)
				return
			}
			done(reply, nil)
		})
	})
}

// pumpFetch starts the next request of l's fetcher, if it is idle.
func (ss *simSub) pumpFetch(run int, l *link) {
	if ss.s == nil || ss.run != run {
		return
	}
	f := ss.fetchers[l]
	if f == nil || f.busy || len(f.queue) == 0 {
		return
	}
	var batch []fetchJob
	batch, f.queue = packFetch(f.queue, l.singleFetch.Load())
	f.busy = true
	a := newFetchAnswer(batch)
	w := ss.w
	p := w.pubAtRecovery(batch[0].endpoint)
	req := a.request()
	finish := func(results []fetchResult) {
		ss.post(run, func() {
			for _, r := range results {
				ss.s.onResult(r)
			}
			f.busy = false
			ss.pumpFetch(run, l)
		})
	}
	w.sim.After(w.delay(), "", func() {
		replies, ok := p.fetchRequest(ss, req)
		if !ok {
			w.sim.After(2*time.Second, "", func() { finish(a.failed()) })
			return
		}
		// The replies come back in order, one delay later, then at the
		// pace of the subscriber's CPU.
		at := w.sim.Now().Add(w.delay())
		var deliver func(i int)
		deliver = func(i int) {
			if i == len(replies) {
				return
			}
			w.sim.At(at, "", func() {
				if !w.reachable(p.name, ss.name) {
					w.sim.After(2*time.Second, "", func() { finish(a.failed()) })
					return
				}
				ss.post(run, func() {
					st, err := a.next(replies[i], w.sim.Now(), l)
					if err != nil {
						for _, r := range a.failed() {
							ss.s.onResult(r)
						}
						f.busy = false
						ss.pumpFetch(run, l)
						return
					}
					if st.replay != nil {
						ss.s.onFetch(fetchResult{job: *st.replay, msg: st.msg})
					}
					for _, r := range st.results {
						ss.s.onResult(r)
					}
					if st.finished {
						f.busy = false
						ss.pumpFetch(run, l)
						return
					}
					deliver(i + 1)
				})
			})
		}
		deliver(0)
	})
}

// checkExit ends the run once every publisher ended, as syncsub
// --exit-on-end does: the outcome is judged, the Subscriber closed.
func (ss *simSub) checkExit() {
	if ss.exited || ss.s == nil || len(ss.ends) < len(ss.w.pubs) {
		return
	}
	w := ss.w
	ss.exited = true
	w.tracef("%s run %d exits", ss.name, ss.run)
	ss.judgeRun()
	ss.stop("exit")
}

// judgeRun holds what the run says of itself (its Stats, the JobError
// syncsub maps to an exit code) to what its events add up to.
func (ss *simSub) judgeRun() {
	w := ss.w
	select {
	case <-ss.s.Done():
	default:
		w.check.Failf("%s run %d: every publisher ended, but Done is not closed", ss.name, ss.run)
		return
	}
	st := ss.s.Stats()
	w.check.CheckCounts(ss.name, ss.run, invariant.Counts{Received: st.Received, Recovered: st.Recovered, Lost: st.Lost,
		LossEvents: st.LossEvents, UnknownTails: st.UnknownTails})
	said := invariant.Outcome{Name: string(OutcomeOK), ExitCode: invariant.ExitOK}
	var je *JobError
	if err := ss.s.Err(); errors.As(err, &je) {
		said.Name = string(je.Outcome)
		said.ExitCode = map[Outcome]int{OutcomeLost: invariant.ExitFailed, OutcomeQuorumFailed: invariant.ExitQuorumFailed,
			OutcomePublisherGone: invariant.ExitPublisherGone, OutcomeInterrupted: invariant.ExitInterrupted}[je.Outcome]
	} else if err != nil {
		w.check.Failf("%s run %d: Err is %T %v, not a *JobError", ss.name, ss.run, err, err)
	}
	w.check.CheckOutcome(ss.name, ss.run, true, said)
}

// stop ends the run: its connections close, its timers stop, what is in
// flight to it is dropped.
func (ss *simSub) stop(why string) {
	for _, ep := range ss.endpoints() {
		c := ss.conns[ep]
		ss.idleCheck[c].Stop()
		c.subClose(why)
	}
	for _, t := range ss.dialing {
		t.Stop()
	}
	ss.cpu.Stop()
	ss.tick.Stop()
	ss.cpu, ss.tick = nil, nil
	ss.conns = map[string]*simConn{}
	ss.inbox = nil
	ss.s.refreshStreamStats()
	if ss.s.ckpt != nil {
		if why == "crashed" {
			ss.disk.Crash(simdisk.CrashOptions{Kind: simdisk.ProcessCrash})
		} else {
			ss.s.flushCheckpoints()
			if err := ss.s.ckpt.close(); err != nil {
				ss.w.check.Failf("%s run %d: closing its state: %v", ss.name, ss.run, err)
			}
		}
	}
	ss.s = nil
}

// crash kills the run; it restarts later, from its state directory if it
// has one.
func (ss *simSub) crash() {
	if ss.s == nil || ss.exited {
		return
	}
	w := ss.w
	w.tracef("%s crashes", ss.name)
	ss.crashes++
	ss.stop("crashed")
	w.sim.After(time.Duration(50+w.rnd.IntN(2000))*time.Millisecond, ss.name+" restarts", ss.start)
}

// stall stops the CPU for d, as SIGSTOP does; the network goes on.
func (ss *simSub) stall(d time.Duration) {
	if ss.s == nil {
		return
	}
	ss.w.tracef("%s stalls for %v", ss.name, d)
	ss.stalled = latest(ss.stalled, ss.w.sim.Now().Add(d))
	ss.wakeCPU(ss.stalled)
}

// heal delivers what a partition held up.
func (ss *simSub) heal() {
	if ss.s != nil {
		ss.wakeCPU(ss.w.sim.Now())
	}
}

// lostCauses is for the checker: a loss cause the Stream never reports
// is a bug of its own.
var lostCauses = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range recovery.Causes() {
		m[c.String()] = true
	}
	return m
}()
