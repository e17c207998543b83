package coord

import (
	"context"
	"errors"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// run is the one goroutine that writes to the PUB socket: batches in
// order, HELLOs to new connections, heartbeats, and at the end END. It
// feeds the core the connection events and the passage of time, asking it
// when it next has something to do rather than waking on a fixed beat.
// After END it goes on serving connections (a subscriber that comes back
// to finish its repairs gets a HELLO and END) until release.
func (p *Publisher) run() {
	defer close(p.runDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stop := p.stop
	var rs runState
	for {
		deadline := p.pass(p.hard, p.now(), &rs) // Close ends a send blocked on subscribers
		timer.Reset(time.Until(deadline))
		select {
		case <-p.wake:
			if p.cfg.Linger > 0 && stop != nil {
				p.linger()
			}
		case <-timer.C:
		case <-stop:
			stop = nil // the next pass sends the rest, then END
		case <-p.final:
			return
		}
	}
}

// runState is what run keeps from one pass to the next.
type runState struct {
	batches []*outMsg
	tick    tickResult
	evs     []wire.PeerEvent
	next    time.Time // when the core next needs a tick
	held    bool      // batches wait for the store (p.backlog)
	retryAt time.Time
}

// pass does what is due at now: connection events, the batches the core
// holds, END once Shutdown began and everything accepted went out, and
// the core's tick. It returns when it has something to do next, at the
// latest.
func (p *Publisher) pass(ctx context.Context, now time.Time, rs *runState) time.Time {
	if p.isClosed() {
		return now.Add(time.Hour) // Close: nothing more goes out
	}
	if rs.evs = p.takeConnEvents(rs.evs[:0]); len(rs.evs) > 0 {
		p.connectionEvents(ctx, rs.evs, now)
		rs.next = time.Time{} // a new connection may need a HELLO or a join deadline
	}
	if !rs.held || !now.Before(rs.retryAt) {
		if len(p.cu.cursors) > 0 {
			p.feedCursors() // those that caught up go back to the live stream before the hold is judged
		}
		rs.batches, rs.held = p.sendBatches(ctx, rs.batches, now)
		rs.retryAt = now.Add(keepRetry)
	}
	if len(p.cu.cursors) > 0 {
		p.feedCursors()
	}
	if !rs.held && p.sendEnd(ctx, now) {
		rs.next = time.Time{}
	}
	if !now.Before(rs.next) {
		rs.next = p.tick(ctx, now, &rs.tick, rs.held)
	}
	deadline := rs.next
	if rs.held && rs.retryAt.Before(deadline) {
		deadline = rs.retryAt
	}
	if p.cu.holding {
		// Judge the hold again when the cursors' SlowTimeout runs out;
		// a cursor that reads wakes run sooner (OnWritable).
		if at := p.cu.fedAt.Add(p.slowTimeout()); at.Before(deadline) {
			deadline = at
		}
	}
	return deadline
}

// linger waits Linger for more records to join the batch, or until the end.
func (p *Publisher) linger() {
	t := time.NewTimer(p.cfg.Linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.stop:
	}
}

// onPeerEvent queues a PUB connection event for run. It is called from
// the PUB socket's goroutines and must not block.
func (p *Publisher) onPeerEvent(ev wire.PeerEvent) {
	p.connEvs.push(ev)
	signal(p.wake)
}

func (p *Publisher) takeConnEvents(dst []wire.PeerEvent) []wire.PeerEvent { return p.connEvs.take(dst) }

// connectionEvents feeds connection events to the core and sends the
// first HELLO to each connection the moment it subscribed to the control
// topic (its data subscriptions, sent before, are in place by then).
func (p *Publisher) connectionEvents(ctx context.Context, evs []wire.PeerEvent, now time.Time) {
	type hello struct {
		conn  wire.ConnID
		nonce [envelope.NonceSize]byte
	}
	var hellos []hello
	var coreEvs []coreEvent
	var final []envelope.TopicSeq
	var failure error
	p.mu.Lock()
	if p.core.endDue() {
		final, failure = p.core.final, p.core.failure
	}
	for _, ev := range evs {
		id := connID(ev.Conn)
		switch ev.Type {
		case wire.PeerConnected:
			p.core.dataConnected(id, ev.Identity, recovery.HostKey(ev.Remote), now)
		case wire.PeerSubscribed:
			if nonce, ok := p.core.dataSubscribed(id, ev.Prefix, now); ok {
				hellos = append(hellos, hello{ev.Conn, nonce})
			}
		case wire.PeerSlow:
			p.core.dataSlow(id)
		case wire.PeerDisconnected:
			p.core.dataGone(id, now)
			p.dropCursor(ev.Conn)
		}
	}
	coreEvs = p.core.takeEvents(coreEvs)
	p.noteChangeLocked()
	p.mu.Unlock()
	for _, ev := range evs {
		if ev.Type == wire.PeerSlow {
			p.rl.Warn("slow-subscriber", "slow subscriber disconnected; it repairs its gap over the recovery channel",
				zap.String("remote", ev.Remote), zap.Int("dropped", ev.Dropped))
		}
	}
	for _, h := range hellos {
		p.sendHello(ctx, h.conn, h.nonce)
		if final != nil {
			// END went out before this connection came: a subscriber
			// back to finish its repairs learns where the epoch ended.
			p.sendEndTo(ctx, h.conn, final, failure)
		}
	}
	p.logEvents(coreEvs)
}

// sendBatches takes the core's batches and hands them to the socket in
// order, after the retained store kept them (memory History or journal):
// once sent, a batch may be back in the pool, and whatever a subscriber
// could have seen must be repairable. Batches the store could not keep
// (the journal's disk is full) wait in p.backlog, in order, and nothing
// newer is sent before them; run retries every keepRetry. It reports
// whether a backlog is left.
func (p *Publisher) sendBatches(ctx context.Context, batches []*outMsg, at time.Time) ([]*outMsg, bool) {
	batches = append(batches[:0], p.backlog...)
	clear(p.backlog)
	p.backlog = p.backlog[:0]
	// Nothing new is taken while every joined subscriber is catching up
	// (holdForCursors); a backlog the store refused goes first as ever.
	hold := len(batches) == 0 && p.holdForCursors(at)
	p.mu.Lock()
	fresh := len(batches)
	if !hold {
		batches = p.core.take(batches)
	}
	p.losses = p.core.takeLosses(p.losses)
	p.classes = p.core.takeClassChanges(p.classes[:0])
	p.cu.joins = p.core.takeCatchUps(p.cu.joins[:0])
	p.mu.Unlock()
	p.applyClasses()
	p.startCatchUps()
	if len(batches) == 0 {
		p.sendLosses(ctx, 0)
		return batches, false
	}
	now := at.UnixNano()
	for _, m := range batches[fresh:] {
		m.finish(now)
	}
	n := len(batches)
	if p.store != nil {
		var err error
		if n, err = p.store.keep(batches); err != nil {
			p.keepFailed.Add(1)
			p.rl.Warn("keep-failed", "cannot retain batches; holding them back until the store takes them",
				zap.Int("held_back", len(batches)-n), zap.Error(err))
		}
		if n < len(batches) || fresh > 0 {
			p.mu.Lock()
			p.core.retaken(batches[:n])
			p.core.heldBack(batches[n:])
			p.mu.Unlock()
		}
	}
	sent, records := 0, 0
	for _, m := range batches[:n] {
		sent += m.bytes
		records += m.b.Count()
		p.sendLosses(ctx, m.gen) // those queued before m began
		p.noteSent(m)
		if err := p.sendBatch(ctx, m); err != nil && !errors.Is(err, wire.ErrClosed) && !errors.Is(err, context.Canceled) {
			p.lg.Debug("send failed", zap.Error(err))
		}
		p.detachBehind()
		if len(p.cu.cursors) > 0 {
			// Between two live batches, not only once per pass: a pass
			// may send many, and a cursor topped up once per pass could
			// never catch up with a publisher at full speed, however
			// fast its subscriber reads.
			p.feedCursors()
		}
	}
	p.backlog = append(p.backlog, batches[n:]...)
	if len(p.backlog) == 0 {
		p.sendLosses(ctx, 0)
	}
	p.published.Add(uint64(records))
	p.publishedBytes.Add(uint64(sent - 4*records)) // without the length prefixes
	p.batches.Add(uint64(n))
	p.locked(func(c *pubCore) { c.sent(sent) })
	clear(batches)
	return batches, len(p.backlog) > 0
}

// keepRetry is how often run retries batches the store could not keep.
const keepRetry = 100 * time.Millisecond

// tick lets the core act on the time: HELLOs to connections that have not
// joined yet, heartbeats, the quorum's deadlines, and connections that
// never joined. It returns when the core needs the next tick.
// While batches wait for the store (held), heartbeats carry an empty
// table: the core's tables include them, and a subscriber must not be
// told of sequences it cannot have yet.
func (p *Publisher) tick(ctx context.Context, now time.Time, res *tickResult, held bool) time.Time {
	p.mu.Lock()
	p.core.tick(now, res)
	next := p.core.nextDeadline()
	evs := p.core.takeEvents(nil)
	p.noteChangeLocked()
	p.mu.Unlock()
	for _, h := range res.hellos {
		p.sendHello(ctx, wire.ConnID(h.conn), h.nonce)
	}
	for _, id := range res.kick {
		p.pub.Kick(wire.ConnID(id), errNoHandshake)
		p.kicked.Add(1)
	}
	if res.heartbeat != nil {
		if held {
			res.heartbeat = res.heartbeat[:0]
		}
		p.sendControl(ctx, envelope.KindHeartbeat, envelope.AppendTable(nil, res.heartbeat))
	}
	p.logEvents(evs)
	return next
}

var errNoHandshake = errors.New("coord: no sync handshake within JoinTimeout")

// sendEnd ends the epoch once Shutdown began and everything Publish
// accepted went out: END, the last sequence of every topic, to every
// connection. A publisher whose quorum failed says so first (ABORT), so
// subscribers do not mistake the empty epoch for a job done. It reports
// whether it sent END.
func (p *Publisher) sendEnd(ctx context.Context, now time.Time) bool {
	p.mu.Lock()
	table, failure, ok := p.core.endIfDone(now)
	if ok {
		p.noteChangeLocked()
	}
	p.mu.Unlock()
	if !ok {
		return false
	}
	if failure != nil {
		p.sendControl(ctx, envelope.KindAbort, []byte(failure.Error()))
	}
	p.sendControl(ctx, envelope.KindEnd, envelope.AppendTable(nil, table))
	p.cu.end, p.cu.endFailure = table, failure
	p.lg.Info("END sent", zap.Uint64("published", p.published.Load()), zap.Int("catching_up", len(p.cu.cursors)),
		zap.Duration("linger_after_end", p.cfg.LingerAfterEnd))
	return true
}

// sendEndTo sends END (and ABORT first, after a failed quorum) to one
// connection that came after END went out.
func (p *Publisher) sendEndTo(ctx context.Context, conn wire.ConnID, table []envelope.TopicSeq, failure error) {
	if failure != nil {
		_, _ = p.pub.SendTo(ctx, conn, &wire.Msg{Frames: p.control(envelope.KindAbort, []byte(failure.Error()))})
	}
	_, _ = p.pub.SendTo(ctx, conn, &wire.Msg{Frames: p.control(envelope.KindEnd, envelope.AppendTable(nil, table))})
	p.controls.Add(1)
}

func (p *Publisher) sendHello(ctx context.Context, conn wire.ConnID, nonce [envelope.NonceSize]byte) {
	_, _ = p.pub.SendTo(ctx, conn, &wire.Msg{Frames: p.control(envelope.KindHello, nonce[:])})
	p.controls.Add(1)
}

func (p *Publisher) sendControl(ctx context.Context, kind envelope.Kind, payload []byte) {
	_ = p.pub.Send(ctx, &wire.Msg{Frames: p.control(kind, payload), To: liveClasses})
	p.controls.Add(1)
}

func (p *Publisher) control(kind envelope.Kind, payload []byte) [][]byte {
	frames, _ := envelope.Encode(nil, envelope.ControlTopic, envelope.Header{
		Kind:      kind,
		Publisher: p.cfg.ID,
		Epoch:     p.cfg.Epoch,
		Time:      p.now().UnixNano(),
	}, payload)
	return frames[:]
}

// logEvents logs what the core reported. Refusals are what a hostile or
// broken peer can cause at will, so they are rate-limited.
func (p *Publisher) logEvents(evs []coreEvent) {
	for _, ev := range evs {
		counts := []zap.Field{zap.Int("live", ev.live), zap.Int("need", ev.need)}
		switch ev.kind {
		case evJoined:
			p.lg.Info("subscriber joined", append(counts, zap.String("subscriber", ev.subscriber), zap.Int("joined", ev.joined))...)
		case evRefused:
			fields := []zap.Field{zap.String("code", ev.code), zap.String("reason", ev.reason)}
			if ev.identity != "" {
				fields = append(fields, zap.String("identity", ev.identity))
			}
			p.rl.Warn("refused-"+ev.code, "sync request refused", fields...)
		case evQuorumReached:
			p.lg.Info("quorum reached, publishing", counts...)
		case evQuorumForced:
			p.lg.Warn("quorum timeout, proceeding with the subscribers present", counts...)
		case evQuorumFailed:
			p.lg.Warn("quorum timeout", append(counts, zap.Error(ev.err))...)
		case evQuorumLost:
			p.lg.Warn("quorum lost", append(counts, zap.Stringer("policy", p.cfg.QuorumLost), zap.Uint64("published", p.published.Load()))...)
		case evQuorumRegained:
			p.lg.Info("quorum regained", append(counts, zap.Uint64("published", p.published.Load()))...)
		case evLeftBeforeStart:
			p.rl.Info("left-before-start", "subscriber left before the start; it no longer counts", append(counts, zap.String("subscriber", ev.subscriber))...)
		case evKick:
			p.rl.Warn("no-handshake", "closed a data connection that never completed the sync handshake", zap.Duration("join_timeout", p.cfg.JoinTimeout))
		}
	}
}
