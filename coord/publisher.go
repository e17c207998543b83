package coord

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/internal/ratelog"
	"github.com/syncmq/syncmq/internal/wire"
	"go.uber.org/zap"
)

// Publisher publishes envelopes on a PUB socket once a quorum of
// subscribers has proven its data path through the sync handshake.
//
// Publish may be called from many goroutines. Messages of one topic are
// numbered in the order Publish calls return, and subscribers receive all
// messages in the order Publish accepted them, across topics too, except
// while one catches up from the history (PublisherConfig.SlowPolicy):
// then its records come in order within each topic, topic by topic.
type Publisher struct {
	cfg  PublisherConfig
	lg   *zap.Logger
	rl   *ratelog.Logger
	now  func() time.Time
	pub  pubSocket
	sync endpointServer
	rec  *recoveryServer // nil when recovery is off
	// store keeps what was sent for repairs: the journal with DataDir,
	// else the memory History when recovery is on; nil for neither.
	store   retained
	backlog []*outMsg  // batches the store could not keep yet; run only
	losses  []lossNote // LOSS messages not sent yet, in order; run only
	g       gogroup.Group

	cluster *cluster  // nil without Gossip
	allow   allowList // who may subscribe, count and fetch; nil: everyone

	// All protocol state lives in core, a plain state machine (pubcore.go)
	// behind mu, which is held only for its method calls, never across
	// I/O. One goroutine (run, publisher_run.go) owns the PUB socket; the
	// sync and recovery servers answer on their own goroutines, asking
	// the core under the same mutex.
	mu      sync.Mutex
	core    *pubCore
	gen     uint64        // core.gen as of the last broadcast
	changed chan struct{} // closed and replaced when core.gen moves

	wake    chan struct{}      // run: batches or connection events wait
	connEvs *connEvents        // connection events for run, in order, coalesced
	classes []classChange      // run's scratch for the core's form changes
	stop    chan struct{}      // closed by Shutdown or Close: the epoch ends
	final   chan struct{}      // closed by release: run returns
	hard    context.Context    // done after Close: stop without END, end every wait
	closeFn context.CancelFunc // ends hard
	runDone chan struct{}      // closed when run has returned

	shutdownOnce, closeOnce, releaseOnce sync.Once
	finalOnce                            sync.Once // closes final
	shutdownErr, releaseErr, closeErr    error
	pool                                 sync.Pool

	published, batches, controls, kicked, keepFailed atomic.Uint64
	publishedBytes, handshakes                       atomic.Uint64
	waiting                                          atomic.Int64 // Publish calls blocked

	multiBatches atomic.Uint64 // of batches, those sent as MULTI

	cu                                                    catchUp // run's: SlowCatchUp cursors
	catchUps, caughtUpMerged, caughtUpBytes, catchUpHolds atomic.Uint64
	catchingUp                                            atomic.Int64
}

// endpointServer is a request-reply endpoint as the Publisher uses it:
// *wire.Server on the network.
type endpointServer interface {
	Endpoint() string
	Addr() net.Addr
	Stats() wire.ServerStats
	Shutdown(ctx context.Context) error
	Close() error
}

var _ endpointServer = (*wire.Server)(nil)

// NewPublisher binds the PUB, sync and recovery endpoints and starts
// probing for subscribers. It does not block.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	store, err := openStore(&cfg) // with DataDir, the journal decides ID and Epoch
	if err != nil {
		return nil, err
	}
	p := newPublisher(cfg, store, time.Now)
	if err := p.bind(); err != nil {
		if store != nil {
			_ = store.close()
		}
		return nil, err
	}
	p.startCore(p.now())
	if cfg.Gossip != nil {
		if err := p.joinCluster(); err != nil {
			p.closeEndpoints()
			if store != nil {
				_ = store.close()
			}
			return nil, err
		}
	}
	p.g.Go(p.run)
	p.warnIfExposed()
	p.lg.Info("publisher started",
		zap.String("pub", p.pub.Endpoint()), zap.String("sync", p.sync.Endpoint()), zap.String("recovery", p.RecoveryEndpoint()),
		zap.Uint64("epoch", cfg.Epoch), zap.Stringer("quorum", cfg.Quorum))
	return p, nil
}

// newPublisher returns a Publisher with its state and no endpoint yet:
// NewPublisher binds sockets, the simulator plugs in its own.
func newPublisher(cfg PublisherConfig, store retained, now func() time.Time) *Publisher {
	lg := cfg.Logger.Named("publisher").With(zap.String("publisher", cfg.ID.Short()), zap.Uint64("epoch", cfg.Epoch))
	p := &Publisher{
		cfg:     cfg,
		lg:      lg,
		now:     now,
		store:   store,
		rl:      ratelog.New(lg, 0),
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		final:   make(chan struct{}),
		runDone: make(chan struct{}),
		allow:   newAllowList(cfg.Allow),
	}
	p.connEvs = newConnEvents(cfg.Topics, p.rl)
	p.cu = catchUp{on: cfg.SlowPolicy == SlowCatchUp && feedsCatchUps(store), target: int64(queueBytes(cfg.Wire.internal())), index: make(map[*topicState]int)}
	p.hard, p.closeFn = context.WithCancel(context.Background())
	p.pool.New = func() any {
		m := &outMsg{}
		m.OnFree = func(*wire.Msg) { p.pool.Put(m) }
		return m
	}
	return p
}

// bind opens the PUB, sync and recovery endpoints.
func (p *Publisher) bind() error {
	cfg := p.cfg
	wcfg := cfg.Wire.internal()
	wcfg.Logger = p.lg
	wcfg.TLS, wcfg.Allow = cfg.TLS.wireTLS(), nil
	if p.allow != nil {
		wcfg.Allow = p.allow.allows
	}
	p.setPace(&wcfg)
	userEvent := wcfg.OnEvent
	wcfg.OnEvent = func(ev wire.PeerEvent) {
		p.onPeerEvent(ev)
		if userEvent != nil {
			userEvent(ev)
		}
	}
	// At a connection limit of the PUB socket, a connection that has not
	// proved a subscriber makes room for a new one, so strangers that
	// connect and never join cannot keep subscribers out until
	// JoinTimeout closes them.
	wcfg.Evictable = func(id wire.ConnID) bool { return !p.joinedConn(id) }
	pub, err := wire.Listen(cfg.Bind, wcfg)
	if err != nil {
		return err
	}
	p.pub = pub
	if p.sync, err = wire.Serve(cfg.SyncBind, wire.ServerConfig{Logger: p.lg, TLS: cfg.TLS.wireTLS(), MaxConnsPerIP: cfg.Wire.MaxConnsPerIP}, p.handleSync); err != nil {
		p.closeEndpoints()
		return err
	}
	if cfg.RecoveryBind != "" {
		if p.rec, err = newRecoveryServer(p, p.store); err != nil {
			p.closeEndpoints()
			return err
		}
		if err = p.rec.serve(cfg.RecoveryBind); err != nil {
			p.rec = nil
			p.closeEndpoints()
			return err
		}
	}
	return nil
}

// setPace sets the wire's pacing from the slow policy: under catch-up
// and cut the socket goes at the pace of the fastest subscriber, under
// wait at the slowest's. Under catch-up it also reports the connections
// more than 2 x QueueBytes behind (behind the fastest, that is), which
// run then feeds from the store, and when their queues drained.
func (p *Publisher) setPace(wcfg *wire.PubConfig) {
	switch {
	case p.cfg.SlowPolicy == SlowWait:
		wcfg.Pace = wire.PaceSlowest
	case p.cu.on:
		wcfg.Pace = wire.PaceFastest
		wcfg.BehindBytes = 2 * queueBytes(*wcfg)
		wcfg.OnWritable = func(wire.ConnID) { signal(p.wake) }
	default:
		wcfg.Pace = wire.PaceFastest
	}
}

// queueBytes is the wire's QueueBytes, defaulted.
func queueBytes(w wire.PubConfig) int {
	if w.QueueBytes > 0 {
		return w.QueueBytes
	}
	return wire.DefaultPubConfig().QueueBytes
}

// closeEndpoints closes whatever bind opened, at once.
func (p *Publisher) closeEndpoints() {
	if p.pub != nil {
		p.pub.Close()
	}
	if p.sync != nil {
		p.sync.Close()
	}
	if p.rec != nil {
		p.rec.close()
	}
}

// startCore creates the protocol state; the PUB socket may already ask
// joinedConn, hence the lock.
func (p *Publisher) startCore(now time.Time) {
	core := newPubCore(p.cfg, p.RecoveryEndpoint(), now, p.newBatch)
	core.catchUp = p.cu.on
	p.mu.Lock()
	p.core = core
	p.mu.Unlock()
}

func (p *Publisher) newBatch() *outMsg { return p.pool.Get().(*outMsg) }

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

// ID returns the publisher id.
func (p *Publisher) ID() envelope.ID { return p.cfg.ID }

// Epoch returns this incarnation's epoch.
func (p *Publisher) Epoch() uint64 { return p.cfg.Epoch }

// Quorum returns the quorum rule in force (QuorumStatic with Expect when
// no membership rule was configured).
func (p *Publisher) Quorum() QuorumRule { return p.cfg.Quorum }

// locked runs f on the core under the mutex and wakes every waiter if f
// changed what they wait for.
func (p *Publisher) locked(f func(c *pubCore)) {
	p.mu.Lock()
	defer p.mu.Unlock() // a panic in f must not leave every caller blocked on mu
	f(p.core)
	p.noteChangeLocked()
}

func (p *Publisher) noteChangeLocked() {
	if p.core.gen != p.gen {
		p.gen = p.core.gen
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// WaitQuorum blocks until publishing may start: the quorum (Expect, or the
// membership Quorum once Settle has passed) joined, or QuorumTimeout
// passed under policy proceed. It returns a *QuorumError when
// QuorumTimeout passed under policy fail (the timeout runs from
// NewPublisher, not from this call), ctx.Err() if ctx ends first, and
// ErrClosed after Shutdown or Close.
func (p *Publisher) WaitQuorum(ctx context.Context) error {
	for {
		p.mu.Lock()
		ph, failure, changed := p.core.phase, p.core.failure, p.changed
		p.mu.Unlock()
		switch ph {
		case phasePublishing:
			return nil
		case phaseFailed:
			return failure
		case phaseEnding, phaseEnded:
			if failure != nil {
				return failure
			}
			return ErrClosed
		}
		select {
		case <-changed:
		case <-p.hard.Done(): // Close, or a Shutdown step that failed
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Publish stamps payload with the next sequence of topic and queues it for
// the PUB socket, returning that sequence. payload is copied; the caller
// may reuse it at once. A sequence number is given only to a message that
// will be handed to the socket.
//
// Publish blocks before the quorum (as WaitQuorum does), while MaxPending
// bytes wait for the socket, and, under QuorumLost pause, while a
// membership quorum reached before is lost. It returns ctx.Err() if ctx
// ends first and ErrClosed once Shutdown or Close has started; every
// blocked call returns then.
func (p *Publisher) Publish(ctx context.Context, topic string, payload []byte) (uint64, error) {
	for {
		p.mu.Lock()
		seq, err := p.core.publish(topic, payload)
		changed := p.changed
		p.mu.Unlock()
		if err == nil {
			signal(p.wake)
			return seq, nil
		}
		if err := p.waitCore(ctx, changed, err); err != nil {
			return 0, err
		}
	}
}

// waitCore is what Publish, PublishSeq and Forward do when the core
// refused with err: return it, unless it says to wait (before the quorum,
// for MaxPending space, while a lost quorum pauses publishing); then wait
// for the core to change (nil: try again), for ctx, or for Close or a
// Shutdown step that failed (ErrClosed).
func (p *Publisher) waitCore(ctx context.Context, changed <-chan struct{}, err error) error {
	switch err {
	case errWaitQuorum, errWaitSpace, errPaused:
	default:
		return err
	}
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	select {
	case <-changed:
		return nil
	case <-p.hard.Done():
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Shutdown ends the epoch gracefully: Publish and WaitQuorum return
// ErrClosed from now on, what Publish accepted is sent, then END. Then
// Shutdown waits, bounded by ctx, until every subscriber that joined this
// epoch confirmed with a BYE that it has everything up to END (or was
// told what it lost). Meanwhile the endpoints keep serving: a subscriber
// that lost its connection (cut as a slow consumer, restarted) connects
// again, is sent END, repairs what it misses and says BYE. One that has
// no connection is waited for RepairWindow, from END or from when its
// connection went away, then given up. Then Shutdown closes the sockets,
// leaves the gossip cluster and waits for every goroutine.
//
// It returns nil when every subscriber that joined confirmed with nothing
// lost; an *EndError naming those that did not confirm or reported
// losses (wrapping ctx.Err() if ctx ended first); ctx.Err() if ctx ended
// before END could go out (the publisher is closed anyway, without END);
// and ErrClosed if Close came first. A step of the shutdown that fails
// or panics does not stop the others: the endpoints still close and every
// goroutine is waited for, and the result includes the failure (a
// *StepPanicError for a panic, not a panic of the caller; a panic while
// waiting also stops the publisher without END). Idempotent: later calls
// return the first call's result. Safe from any goroutine, including an OnMember
// callback.
func (p *Publisher) Shutdown(ctx context.Context) error {
	p.shutdownOnce.Do(func() { p.shutdownErr = p.shutdown(ctx) })
	return p.shutdownErr
}

func (p *Publisher) shutdown(ctx context.Context) error {
	// Whatever happens below, a panic included, the endpoints close and
	// every goroutine is waited for.
	var steps releaseSteps
	started := true
	steps.do("refuse new records", func() error {
		p.locked(func(c *pubCore) { started = c.shutdown() })
		return nil
	})
	if !started && p.isClosed() {
		return ErrClosed
	}
	close(p.stop)
	var err error
	if steps.err() == nil {
		steps.do("wait for the end of the epoch", func() error {
			// A Close during the wait ends it.
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(p.hard, cancel)()
			err = p.awaitEnd(wctx)
			return nil
		})
	}
	if werr := steps.err(); werr != nil {
		p.closeFn() // the end is unknown: stop without END rather than guess
		err = werr
	} else if p.isClosed() {
		err = ErrClosed
	}
	if rerr := p.release(ctx); rerr != nil {
		err = errors.Join(err, rerr)
	}
	p.lg.Info("publisher closed", zap.Uint64("published", p.published.Load()), zap.Error(err))
	return err
}

// awaitEnd waits until END went out and every subscriber that joined
// confirmed it or was given up (pubCore.endState), or ctx ends. If ctx
// ends before END could go out (the store held batches back), the
// publisher stops hard, without END: subscribers then see the tail as
// unknown rather than as published.
func (p *Publisher) awaitEnd(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ended, st, changed := p.endState()
		if st.settled {
			return st.err(nil)
		}
		if !st.next.IsZero() {
			timer.Reset(time.Until(st.next))
		}
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			if !ended {
				p.closeFn() // run may wait for the store: stop it, without END
				return ctx.Err()
			}
			return st.err(ctx.Err())
		}
	}
}

// endState asks the core whether the epoch ended and who is still owed
// a confirmation, and returns what changes with the core's next change.
func (p *Publisher) endState() (ended bool, st endState, changed chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock() // a panic in the core must not leave mu held
	return p.core.phase == phaseEnded, p.core.endState(p.now()), p.changed
}

// release closes what is left after END: the PUB socket, the recovery and
// sync endpoints (an ACK being written still goes out), then leaves the
// gossip cluster (subscribers repairing still needed the recovery
// endpoint), and waits for every goroutine. Once only; every step runs
// even if an earlier one fails or panics, and the first call's failures
// and panics are what every call returns.
func (p *Publisher) release(ctx context.Context) error {
	p.releaseOnce.Do(func() {
		var steps releaseSteps
		steps.do("end the run goroutine", func() error { p.endRun(); return nil })
		steps.do("close the PUB socket", func() error { p.pub.Close(); return nil })
		steps.do("stop the publisher's goroutines", p.stopGoroutines)
		steps.do("close the recovery endpoint", func() error {
			if p.rec != nil {
				p.rec.close()
			}
			return nil
		})
		storeClosed := false
		steps.do("close the retained store", func() error { storeClosed = true; return p.closeStore() })
		steps.do("drain the sync endpoint", func() error { _ = p.sync.Shutdown(ctx); return nil })
		steps.do("close the sync endpoint", p.sync.Close) // after a drain, a no-op
		steps.do("leave the gossip cluster", func() error { p.leaveCluster(ctx); return nil })
		// Every close above is idempotent: this one only does what a
		// failed step left undone.
		steps.do("close what an earlier step left open", func() error {
			if p.rec != nil {
				p.rec.close()
			}
			_ = p.sync.Close()
			if !storeClosed {
				storeClosed = true
				if err := p.closeStore(); err != nil {
					return err
				}
			}
			return p.stopGoroutines()
		})
		p.releaseErr = steps.err()
	})
	return p.releaseErr
}

// endRun tells run to return; once.
func (p *Publisher) endRun() { p.finalOnce.Do(func() { close(p.final) }) }

// stopGoroutines waits for every goroutine of the Publisher, after
// ending what they could be blocked on: run's loop and the PUB socket.
func (p *Publisher) stopGoroutines() error {
	p.endRun()
	p.pub.Close()
	p.g.Stop()
	p.g.Wait()
	return nil
}

// closeStore closes the journal or History; an error from the journal
// (a failed final sync) is returned, since what it holds may not be on
// disk.
func (p *Publisher) closeStore() error {
	if p.store == nil {
		return nil
	}
	if err := p.store.close(); err != nil {
		return fmt.Errorf("closing the retained store: %w", err)
	}
	return nil
}

func (p *Publisher) leaveCluster(ctx context.Context) {
	if p.cluster == nil {
		return
	}
	if ctx.Err() == nil && !p.isClosed() {
		if err := p.cluster.close(ctx); err != nil {
			p.lg.Debug("gossip leave", zap.Error(err))
		}
		return
	}
	p.cluster.shutdown()
}

// Close stops the publisher at once, the way a crash would: Publish and
// WaitQuorum return ErrClosed, connections are dropped, nothing queued is
// sent, no END goes out, the recovery endpoint closes, and gossip stops
// without a leave (peers see a failure). Subscribers see a disconnect and,
// when the publisher comes back, a new epoch. A Shutdown in progress
// returns ErrClosed promptly. Close waits for every goroutine and is
// idempotent; it is safe from any goroutine, including an OnMember
// callback. It returns nil, or what failed or panicked while releasing
// (every step runs regardless, as in Shutdown).
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		var steps releaseSteps
		steps.do("refuse new records", func() error {
			p.locked(func(c *pubCore) { c.shutdown() })
			return nil
		})
		steps.do("close the PUB socket", func() error { p.pub.Close(); return nil }) // first, so nothing more reaches a subscriber
		p.closeFn()
		p.shutdownOnce.Do(func() {
			p.shutdownErr = ErrClosed
			close(p.stop)
		})
		p.closeErr = errors.Join(steps.err(), p.release(context.Background()))
	})
	return p.closeErr
}

func (p *Publisher) isClosed() bool { return p.hard.Err() != nil }

func (p *Publisher) joinedConn(id wire.ConnID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.core != nil && p.core.joinedConn(connID(id))
}

func (p *Publisher) String() string {
	return fmt.Sprintf("publisher %s epoch %d", p.cfg.ID.Short(), p.cfg.Epoch)
}
