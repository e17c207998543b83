package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// Config configures a Relay.
type Config struct {
	// Upstream is how the relay subscribes: Connect and Sync (required),
	// Recovery, ID, Subscribe, StartAt, Stream, TLS, timeouts. Handler
	// must be nil (the relay forwards every event) and Gossip nil: a
	// relay follows one publisher.
	Upstream coord.SubscriberConfig
	// Downstream is how the relay publishes: endpoints, Expect and the
	// quorum settings, History or DataDir, TLS, limits. ID and Epoch must
	// be zero: they are the upstream publisher's.
	Downstream coord.PublisherConfig
	// ProbeTimeout bounds the wait for the upstream publisher's first
	// HELLO, which names the id and epoch the relay serves. Default
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// DrainTimeout bounds, after the upstream END, the wait for the
	// downstream subscribers' BYEs. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// EndGrace is how long, after the upstream END, the relay keeps
	// serving before it sends END downstream: subscribers failing over
	// from another relay of the same stream that died join here meanwhile
	// and repair from this relay's history (a subscriber that joins after
	// END is not waited for). It should exceed the subscribers' failover
	// delay. Zero ends downstream at once.
	EndGrace time.Duration
	// Logger receives the relay's lifecycle; nil means none.
	Logger *zap.Logger
}

// Defaults of Config.
const (
	DefaultProbeTimeout = 30 * time.Second
	DefaultDrainTimeout = 30 * time.Second
)

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.Upstream.Connect == "" || c.Upstream.Sync == "" {
		errs = append(errs, errors.New("upstream: connect and sync are required"))
	}
	if c.Upstream.Handler != nil {
		errs = append(errs, errors.New("upstream: handler must be unset; the relay forwards every event"))
	}
	if c.Upstream.Gossip != nil {
		errs = append(errs, errors.New("upstream: gossip is not supported; a relay follows one publisher"))
	}
	up := c.Upstream
	up.Handler = func(coord.Event) {}
	if err := up.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("upstream: %w", err))
	}
	if c.Downstream.ID != (envelope.ID{}) || c.Downstream.Epoch != 0 {
		errs = append(errs, errors.New("downstream: id and epoch must be unset; they are the upstream publisher's"))
	}
	if err := c.Downstream.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("downstream: %w", err))
	}
	if c.ProbeTimeout < 0 || c.DrainTimeout < 0 || c.EndGrace < 0 {
		errs = append(errs, errors.New("probe timeout, drain timeout and end grace must not be negative"))
	}
	return errors.Join(errs...)
}

// ErrStarted is what a second call of Run returns.
var ErrStarted = errors.New("relay: Run was already called")

// Relay forwards one upstream publisher's stream to its own subscribers.
// See the package documentation.
type Relay struct {
	cfg Config
	lg  *zap.Logger

	mu  sync.Mutex
	pub *coord.Publisher  // set once bound
	sub *coord.Subscriber // set once joining upstream

	failed     chan struct{} // closed when forwarding cannot go on
	failOnce   sync.Once
	failure    error
	downDone   chan struct{} // closed once downstream ended
	downLost   atomic.Uint64 // what downstream did not confirm, for the BYE upstream
	started    atomic.Bool
	forwarded  atomic.Uint64
	lossRanges atomic.Uint64
	lost       atomic.Uint64
	restarts   atomic.Uint64

	// whole lists, per topic, the last record of the message Forward
	// last took whole: the records up to it went downstream with it
	// (handler goroutine only).
	whole         []wholeRun
	wholeAt       int // where sentWhole last found a topic: the next record's is usually at or after it
	wholeTable    []envelope.MultiTopic
	wholeMessages atomic.Uint64
	// reencode makes every record go through PublishSeq: the benchmark's
	// comparison.
	reencode bool
}

// New checks cfg and returns a Relay; Run starts it.
func New(cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	lg = lg.Named("relay")
	if cfg.Upstream.Logger == nil {
		cfg.Upstream.Logger = lg
	}
	if cfg.Downstream.Logger == nil {
		cfg.Downstream.Logger = lg
	}
	return &Relay{cfg: cfg, lg: lg, failed: make(chan struct{}), downDone: make(chan struct{})}, nil
}

// Publisher returns the downstream publisher, nil until Run bound it.
func (r *Relay) Publisher() *coord.Publisher {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pub
}

// Subscriber returns the upstream subscriber, nil until Run joins
// upstream (after the downstream quorum).
func (r *Relay) Subscriber() *coord.Subscriber {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sub
}

// Run probes upstream, binds downstream, waits for the downstream quorum,
// joins upstream and forwards until the upstream END was confirmed
// downstream, or ctx ends. It returns nil only when upstream ended
// cleanly (nothing lost) and every downstream subscriber that joined
// confirmed everything; otherwise an error saying what went wrong: a
// *coord.QuorumError when the downstream quorum failed, a
// *coord.JobError when upstream did not end cleanly, a *coord.EndError
// when downstream subscribers did not confirm, ctx.Err() when ctx ended
// first. When the upstream publisher restarts (a new epoch) before its
// END, the relay closes the old downstream epoch without END and serves
// the new one as a new downstream epoch on the same endpoints, probing,
// waiting for its quorum and joining again; Run then also returns a
// *RestartError for each epoch so given up. Run may be called once; later
// calls return ErrStarted.
func (r *Relay) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	dcfg, ucfg := r.cfg.Downstream, r.cfg.Upstream
	var earlier []error
	for {
		restarted, err := r.runEpoch(ctx, dcfg, ucfg)
		if restarted == nil {
			return errors.Join(append(earlier, err)...)
		}
		// The upstream publisher restarted: serve its new epoch as a new
		// downstream epoch, on the same endpoints, so subscribers see the
		// restart as they would have seen the origin's.
		earlier = append(earlier, restarted)
		r.restarts.Add(1)
		if pub := r.Publisher(); pub != nil {
			dcfg.Bind = rebind(dcfg.Bind, pub.Endpoint())
			dcfg.SyncBind = rebind(dcfg.SyncBind, pub.SyncEndpoint())
			dcfg.RecoveryBind = rebind(dcfg.RecoveryBind, pub.RecoveryEndpoint())
		}
		// The new epoch may have begun before this relay joins it again:
		// take it from its first record.
		ucfg.StartAt = coord.StartAtEarliest
		r.resetEpoch()
	}
}

// rebind is where a downstream endpoint binds again for a new epoch: where
// it was configured, unless that let the system choose a port (":0"),
// then where it was bound.
func rebind(configured, bound string) string {
	if bound != "" && strings.HasSuffix(configured, ":0") {
		return bound
	}
	return configured
}

// resetEpoch clears what one upstream epoch's forwarding kept, once its
// subscriber was closed (no handler or BYE hook runs any more).
func (r *Relay) resetEpoch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = make(chan struct{})
	r.failOnce = sync.Once{}
	r.failure = nil
	r.downDone = make(chan struct{})
	r.downLost.Store(0)
	r.whole, r.wholeAt = r.whole[:0], 0
	r.sub = nil
}

// runEpoch serves one epoch of the upstream publisher: it probes upstream,
// binds downstream, waits for the downstream quorum, joins upstream and
// forwards until the upstream END was confirmed downstream, or ctx ends.
// restarted is non-nil when the upstream publisher came back with a new
// epoch before its END: this epoch was given up downstream without END,
// and Run goes on with the new one.
func (r *Relay) runEpoch(ctx context.Context, dcfg coord.PublisherConfig, ucfg coord.SubscriberConfig) (restarted *RestartError, err error) {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	id, epoch, err := probe(pctx, ucfg.Connect, ucfg.TLS)
	cancel()
	if err != nil {
		return nil, err
	}
	r.lg.Info("upstream publisher found", zap.String("publisher", id.Short()), zap.Uint64("epoch", epoch))
	dcfg.ID, dcfg.Epoch = id, epoch
	pub, err := coord.NewPublisher(dcfg)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.pub = pub
	failed := r.failed
	r.mu.Unlock()
	if err := pub.WaitQuorum(ctx); err != nil {
		return nil, r.endDownstream(pub, err)
	}
	ucfg.Handler = func(ev coord.Event) { r.handle(ctx, pub, id, epoch, ev) }
	sub, err := coord.NewSubscriber(ucfg)
	if err != nil {
		pub.Close()
		return nil, err
	}
	sub.HoldBye(r.holdBye)
	r.mu.Lock()
	r.sub = sub
	r.mu.Unlock()
	r.lg.Info("downstream quorum reached; joining upstream", zap.String("connect", ucfg.Connect))

	select {
	case <-sub.Done():
	case <-failed:
	case <-ctx.Done():
	}
	upErr := r.upstreamResult(ctx, sub)
	var downErr error
	if endedUpstream(upErr) {
		r.grace(ctx)
		dctx, cancel := context.WithTimeout(ctx, r.cfg.DrainTimeout)
		downErr = pub.Shutdown(dctx) // END downstream; wait for their BYEs
		cancel()
		r.noteDownstream(downErr)
	} else {
		// Upstream did not come to its END: no END downstream, which would
		// claim the epoch complete. Subscribers see the relay gone, as
		// they would have seen the origin.
		pub.Close()
		r.downLost.Store(max(1, r.downLost.Load()))
	}
	close(r.downDone)
	sub.Close() // waits for the BYE upstream
	r.lg.Info("relay finished the epoch", zap.Uint64("epoch", epoch), zap.Uint64("forwarded", r.forwarded.Load()), zap.Uint64("lost_upstream", r.lost.Load()),
		zap.NamedError("upstream", upErr), zap.NamedError("downstream", downErr))
	if errors.As(upErr, &restarted) && ctx.Err() == nil {
		return restarted, nil
	}
	return nil, errors.Join(upErr, downErr)
}

// RestartError is in what Run returns when the upstream publisher
// restarted (a new epoch) before its END: the relay gave the old epoch up
// downstream without END and served the new one, but what the old one
// published after the last record the relay received is unknown, as it
// is to a subscriber of the origin.
type RestartError struct {
	Publisher  envelope.ID
	Epoch, New uint64
}

func (e *RestartError) Error() string {
	return fmt.Sprintf("relay: upstream publisher %s restarted (epoch %d, now %d) before its END; the rest of epoch %d is unknown",
		e.Publisher.Short(), e.Epoch, e.New, e.Epoch)
}

// grace keeps serving downstream for EndGrace after the upstream END.
func (r *Relay) grace(ctx context.Context) {
	if r.cfg.EndGrace <= 0 {
		return
	}
	r.lg.Info("upstream ended; serving late joiners before END", zap.Duration("grace", r.cfg.EndGrace))
	t := time.NewTimer(r.cfg.EndGrace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// endDownstream ends the downstream publisher after its quorum wait
// failed with err, and returns what Run returns.
func (r *Relay) endDownstream(pub *coord.Publisher, err error) error {
	var qe *coord.QuorumError
	if errors.As(err, &qe) {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
		defer cancel()
		_ = pub.Shutdown(ctx) // ABORT and END to those who joined
		return err
	}
	pub.Close()
	return err
}

// endedUpstream reports whether the upstream job came to its END: it
// ended cleanly, or with losses that went downstream as LOSS messages.
// Then the relay ends downstream with END too; otherwise (the upstream
// publisher disappeared, restarted or gave up, or the relay stopped)
// without.
func endedUpstream(err error) bool {
	var je *coord.JobError
	return err == nil || errors.As(err, &je) && je.Outcome == coord.OutcomeLost
}

// upstreamResult says how the upstream job ended: nil when END came and
// everything up to it was delivered.
func (r *Relay) upstreamResult(ctx context.Context, sub *coord.Subscriber) error {
	select {
	case <-r.failed:
		return r.failure
	default:
	}
	select {
	case <-sub.Done():
		return sub.Err()
	default:
		return ctx.Err()
	}
}

// noteDownstream records what downstream did not confirm, for the BYE
// upstream: a subscriber that confirmed with losses counts its losses,
// one that did not confirm at all counts one.
func (r *Relay) noteDownstream(err error) {
	if err == nil {
		return
	}
	var n uint64
	var ee *coord.EndError
	if errors.As(err, &ee) {
		n += uint64(len(ee.Unconfirmed))
		for _, l := range ee.Lost {
			n += l
		}
	}
	r.downLost.Store(max(1, n))
}

// holdBye holds the BYE upstream until downstream ended; the BYE then
// reports what downstream did not confirm as lost.
func (r *Relay) holdBye(ctx context.Context, _ envelope.ID, _ uint64) uint64 {
	select {
	case <-r.downDone:
	case <-ctx.Done():
		select {
		case <-r.downDone: // Run closes the subscriber right after: both are ready
		default:
			return max(1, r.downLost.Load())
		}
	}
	return r.downLost.Load()
}

// fail stops forwarding: Run ends with err.
func (r *Relay) fail(err error) {
	r.failOnce.Do(func() {
		r.failure = err
		close(r.failed)
	})
}

// handle forwards one upstream event. It runs on the upstream
// subscriber's goroutine: a PublishSeq that waits for room downstream
// pushes back upstream.
func (r *Relay) handle(ctx context.Context, pub *coord.Publisher, id envelope.ID, epoch uint64, ev coord.Event) {
	if (ev.Publisher != envelope.ID{}) && (ev.Publisher != id || (ev.Epoch != 0 && ev.Epoch != epoch)) {
		switch {
		case ev.Publisher == id && envelope.EpochAfter(ev.Epoch, epoch):
			r.fail(&RestartError{Publisher: id, Epoch: epoch, New: ev.Epoch}) // Run serves the new epoch
		case ev.Type == coord.EventRestart || ev.Type == coord.EventJoined || ev.Type == coord.EventMessage:
			r.fail(fmt.Errorf("relay: upstream is now publisher %s epoch %d, not %s epoch %d it serves: restart the relay",
				ev.Publisher.Short(), ev.Epoch, id.Short(), epoch))
		}
		return
	}
	switch ev.Type {
	case coord.EventMessage:
		if r.sentWhole(ev.Topic, ev.Seq) {
			r.forwarded.Add(1) // went downstream with its message
			return
		}
		if ev.Data != nil && !r.reencode {
			// The message arrived live and in order: it goes downstream as
			// it came, and the records that follow in it are delivered to
			// this handler one after the other.
			err := pub.Forward(ctx, ev.Data)
			switch {
			case err == nil:
				r.noteWhole(ev.Data)
				r.wholeMessages.Add(1)
				r.forwarded.Add(1)
				return
			case !errors.Is(err, coord.ErrNotWhole):
				r.fail(fmt.Errorf("relay: forwarding %s of %d records from %q seq %d: %w", ev.Data.Kind, ev.Data.Count, ev.Topic, ev.Seq, err))
				return
			}
			// A MULTI no publisher of ours makes: record by record.
		}
		if err := pub.PublishSeq(ctx, ev.Topic, ev.Seq, ev.Payload); err != nil {
			r.fail(fmt.Errorf("relay: forwarding %q seq %d: %w", ev.Topic, ev.Seq, err))
			return
		}
		r.forwarded.Add(1)
	case coord.EventLoss:
		r.lossRanges.Add(1)
		if ev.To == 0 {
			return // an unknown tail: the upstream job ends abnormally, and so does the relay
		}
		r.lost.Add(ev.To - ev.From + 1)
		cause, _ := recovery.ParseCause(ev.Cause)
		if err := pub.PublishLoss(ctx, ev.Topic, ev.From, ev.To, cause); err != nil {
			r.fail(fmt.Errorf("relay: forwarding the loss of %q %d-%d: %w", ev.Topic, ev.From, ev.To, err))
		}
	case coord.EventRestart:
		r.fail(&RestartError{Publisher: id, Epoch: epoch, New: ev.Epoch})
	case coord.EventDisconnected:
		r.lg.Warn("upstream disconnected; reconnecting", zap.String("endpoint", ev.Endpoint), zap.Error(ev.Err))
	}
}

// wholeRun is the last record of a topic in a message forwarded whole.
type wholeRun struct {
	topic   string
	through uint64
}

// noteWhole remembers which records m, just forwarded whole, carried.
func (r *Relay) noteWhole(m *envelope.Message) {
	r.whole, r.wholeAt = r.whole[:0], 0
	if m.Kind == envelope.KindData {
		r.whole = append(r.whole, wholeRun{string(m.Topic), m.LastSeq()})
		return
	}
	r.wholeTable = m.MultiTopics(r.wholeTable[:0])
	for _, t := range r.wholeTable {
		r.whole = append(r.whole, wholeRun{string(t.Topic), t.First - 1})
	}
	clear(r.wholeTable)
	for e := range m.MultiRecords() {
		r.whole[e].through++
	}
}

// sentWhole reports whether record seq of topic went downstream in the
// message last forwarded whole.
// The handler gets a message's records in order, so the search starts
// where the last one was found: a MULTI over many topics costs a
// comparison or two per record, not one per topic.
func (r *Relay) sentWhole(topic string, seq uint64) bool {
	n := len(r.whole)
	for k := range n {
		i := r.wholeAt + k
		if i >= n {
			i -= n
		}
		if w := r.whole[i]; w.topic == topic {
			r.wholeAt = i
			return seq <= w.through
		}
	}
	return false
}

// Stats is a snapshot of what the relay did.
type Stats struct {
	Forwarded uint64 // records forwarded downstream
	// Whole counts the upstream DATA and MULTI messages forwarded as they
	// arrived (live and in order); the other records went downstream
	// re-batched.
	Whole      uint64
	LossRanges uint64 // ranges reported lost upstream (forwarded as LOSS)
	Lost       uint64 // records in them
	// Restarts counts the upstream restarts (new epochs) the relay
	// followed.
	Restarts uint64
}

// Stats returns a snapshot.
func (r *Relay) Stats() Stats {
	return Stats{Forwarded: r.forwarded.Load(), Whole: r.wholeMessages.Load(), LossRanges: r.lossRanges.Load(), Lost: r.lost.Load(), Restarts: r.restarts.Load()}
}
