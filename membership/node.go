package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// lifecycle is a Node's state: open, leaving, then closed.
type lifecycle uint8

const (
	lifeOpen lifecycle = iota
	lifeLeaving
	lifeClosed
)

// Node is this process's membership in a cluster. Create it with New; it
// is gossiping as soon as New returns and stays so until Shutdown or Close.
// All methods are safe for concurrent use.
type Node struct {
	cfg            Config // defaults applied
	ml             *memberlist.Memberlist
	meta           *metaDelegate
	tr             *tracker
	sink           *sink
	events         <-chan Event
	cbEvents       chan Event // Events channel in OnEvent mode, closed at shutdown
	addr           string     // bound gossip address
	advertise      string     // advertised gossip address
	gossipInterval time.Duration
	log            *zap.Logger
	warnings       atomic.Uint64 // memberlist's warn and error lines

	updateMu sync.Mutex // serialises metadata changes with their broadcast

	mu        sync.Mutex // guards the fields below
	state     lifecycle
	left      bool          // Shutdown was called
	leaveDone chan struct{} // closed when Shutdown's work is finished
	leaveErr  error         // written before leaveDone is closed

	ops         sync.WaitGroup // running Join and UpdateMeta goroutines
	dispatch    sync.WaitGroup // the OnEvent goroutine
	closing     chan struct{}  // closed when shutdown starts
	done        chan struct{}  // closed when shutdown is complete
	shutdownErr error          // written before done is closed
}

// New validates cfg, applies defaults, and starts gossiping on
// cfg.BindAddr:cfg.BindPort. It does not contact any peer; call Join. It
// fails if the configuration is invalid (ErrInvalidConfig) or the port
// cannot be bound.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	enc, err := cfg.Meta.MarshalBinary() // NodeID may have been filled in
	if err != nil {
		return nil, chain(ErrInvalidConfig, "Meta", err)
	}
	mc, err := profileConfig(cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("%w: Profile: %v", ErrInvalidConfig, err)
	}

	n := &Node{
		cfg:            cfg,
		meta:           &metaDelegate{},
		sink:           newSink(cfg.EventBuffer),
		gossipInterval: mc.GossipInterval,
		log:            cfg.Logger,
		closing:        make(chan struct{}),
		done:           make(chan struct{}),
	}
	n.meta.set(cfg.Meta, enc)
	n.tr = newTracker(cfg.NodeName, cfg.Logger, n.sink)
	if cfg.OnEvent != nil {
		n.cbEvents = make(chan Event)
		n.events = n.cbEvents
		n.dispatch.Add(1)
		go n.dispatchEvents(n.sink.ch, cfg.OnEvent)
	} else {
		n.events = n.sink.ch
	}

	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort // memberlist sets it when BindPort is 0
	}
	if len(cfg.SecretKey) > 0 {
		mc.SecretKey = cfg.SecretKey
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	mc.Delegate = n.meta
	mc.Events = n.tr
	mc.Logger = newMemberlistLogger(cfg.Logger, &n.warnings)
	mc.LogOutput = nil

	ml, err := memberlist.Create(mc)
	if err != nil {
		n.sink.close()
		n.dispatch.Wait()
		return nil, fmt.Errorf("membership: start gossip on %s: %w",
			net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	n.ml = ml
	n.addr = net.JoinHostPort(mc.BindAddr, strconv.Itoa(mc.BindPort)) // memberlist stored the bound port
	if self, ok := n.tr.get(cfg.NodeName); ok {
		n.advertise = self.Addr
	} else {
		n.advertise = n.addr
	}
	return n, nil
}

// dispatchEvents calls fn for every queued event until the queue closes.
func (n *Node) dispatchEvents(ch <-chan Event, fn func(Event)) {
	defer n.dispatch.Done()
	for ev := range ch {
		fn(ev)
	}
}

// Name returns this node's name in the cluster.
func (n *Node) Name() string { return n.cfg.NodeName }

// Addr returns the gossip address actually bound, "host:port"; with
// BindPort 0 it carries the port the operating system chose. Give it to
// other nodes as a seed.
func (n *Node) Addr() string { return n.addr }

// Events returns the event channel. Events are queued without blocking
// memberlist: when the queue (Config.EventBuffer) is full, new events are
// dropped and counted in Stats.DroppedEvents, so a consumer that falls
// behind should resynchronise from Members. The channel is closed by
// Close (and Shutdown). With Config.OnEvent set, events go to the callback
// instead and this channel only gets closed.
func (n *Node) Events() <-chan Event { return n.events }

// Members returns the live members with valid metadata, this node
// included (Local set), sorted by name. Members whose metadata does not
// decode are left out. It does not block on the network.
func (n *Node) Members() []Member { return n.tr.list() }

// Member returns the named live member with valid metadata.
func (n *Node) Member(name string) (Member, bool) { return n.tr.get(name) }

// LocalNode returns this node as a Member: its advertised address and
// current metadata. State is StateLeft after Shutdown and StateFailed after
// Close without Shutdown.
func (n *Node) LocalNode() Member {
	m := Member{Name: n.cfg.NodeName, Addr: n.advertise, Meta: n.meta.get(), Local: true}
	n.mu.Lock()
	if n.state == lifeClosed {
		m.State = StateFailed
		if n.left {
			m.State = StateLeft
		}
	}
	n.mu.Unlock()
	return m
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{
		Members:       n.tr.count(),
		DroppedEvents: n.sink.dropped.Load(),
		InvalidMeta:   n.tr.invalid.Load(),
		Warnings:      n.warnings.Load(),
	}
}

// Timings returns the failure-detection timings of this node's profile for
// the current number of members.
func (n *Node) Timings() Timings {
	t, _ := ProfileTimings(n.cfg.Profile, n.tr.count())
	return t
}

// begin registers a Join or UpdateMeta goroutine, or returns ErrClosed.
func (n *Node) begin() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != lifeOpen {
		return ErrClosed
	}
	n.ops.Add(1)
	return nil
}

// budget is how long a broadcast may be waited for: the time left before
// ctx's deadline, at most Config.BroadcastTimeout, at least 1 ms.
func (n *Node) budget(ctx context.Context) time.Duration {
	d := n.cfg.BroadcastTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	return max(d, time.Millisecond)
}

// UpdateMeta replaces this node's metadata and gossips it. An empty NodeID
// is replaced by the node name; Leaving must not be set. It blocks until
// the update has been sent to peers (at once when there are none), ctx is
// done, or Config.BroadcastTimeout passes. On a timeout or cancellation
// the new metadata is still in effect and keeps spreading. Errors: an
// invalid Meta (ErrBadMeta, ErrMetaTooLarge), ErrClosed after Shutdown or
// Close, ctx's error, or a broadcast timeout.
func (n *Node) UpdateMeta(ctx context.Context, m Meta) error {
	if m.Leaving {
		return fmt.Errorf("%w: Leaving is set; only Leave sets it", ErrBadMeta)
	}
	if m.NodeID == "" {
		m.NodeID = n.cfg.NodeName
	}
	enc, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("membership: update meta: %w", err)
	}
	if err := n.begin(); err != nil {
		return err
	}
	timeout := n.budget(ctx)
	res := make(chan error, 1)
	go func() {
		defer n.ops.Done()
		n.updateMu.Lock()
		defer n.updateMu.Unlock()
		n.meta.set(m, enc)
		res <- n.ml.UpdateNode(timeout)
	}()
	select {
	case err := <-res:
		if err != nil {
			return fmt.Errorf("membership: update meta: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("membership: update meta: %w", ctx.Err())
	}
}

// Shutdown announces that this node is leaving, gossips its departure, and
// shuts the node down; peers report EventLeave. It blocks until done, ctx
// is done, or Config.BroadcastTimeout passes. The node is shut down in
// every case, even when Shutdown returns an error (a broadcast timeout, or
// ctx's error, after which the remaining work finishes in the background
// within the timeout; Close waits for it). If the announcement cannot
// reach peers in time they report EventFailed instead.
//
// Shutdown is idempotent: later calls wait for the first and return nil. It
// returns ErrClosed if Close was called first.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	switch n.state {
	case lifeClosed:
		left := n.left
		n.mu.Unlock()
		if !left {
			return ErrClosed
		}
		<-n.done
		return nil
	case lifeLeaving:
		ld := n.leaveDone
		n.mu.Unlock()
		select {
		case <-ld:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("membership: leave: %w", ctx.Err())
		}
	}
	n.state = lifeLeaving
	n.left = true
	ld := make(chan struct{})
	n.leaveDone = ld
	n.mu.Unlock()

	go n.leave(n.budget(ctx), ld)
	select {
	case <-ld:
		return n.leaveErr
	case <-ctx.Done():
		return fmt.Errorf("membership: leave: %w", ctx.Err())
	}
}

// leave does Shutdown's work within budget, then shuts down and closes ld.
func (n *Node) leave(budget time.Duration, ld chan struct{}) {
	deadline := time.Now().Add(budget)
	remaining := func() time.Duration { return max(time.Until(deadline), time.Millisecond) }
	n.ops.Wait() // no new ones start while leaving

	var errs []error
	// Announce the departure first: memberlist v0.7.0 does not tell peers
	// whether a member left or died, so they look at this flag.
	m := n.meta.get()
	m.Leaving = true
	if enc, err := m.MarshalBinary(); err != nil {
		errs = append(errs, fmt.Errorf("announce: %w", err))
	} else {
		n.meta.set(m, enc)
		if err := n.ml.UpdateNode(remaining() / 2); err != nil {
			errs = append(errs, fmt.Errorf("announce: %w", err))
		}
		if n.tr.count() > 1 {
			// Let the announcement spread before the departure overtakes it.
			t := time.NewTimer(min(3*n.gossipInterval, remaining()/2))
			<-t.C
		}
	}
	if err := n.ml.Leave(remaining()); err != nil {
		errs = append(errs, err)
	}

	n.mu.Lock()
	n.state = lifeClosed
	n.mu.Unlock()
	n.teardown()
	if len(errs) > 0 {
		n.leaveErr = fmt.Errorf("membership: leave: %w", errors.Join(errs...))
	}
	close(ld)
}

// Close stops gossip at once without announcing it, so peers report
// this node as failed after their suspicion timeout (see Timings). It
// waits for running Join and UpdateMeta calls (each bounded by the
// profile's TCP timeout or Config.BroadcastTimeout), a running Shutdown, and
// the OnEvent callback, then closes the Events channel. When it returns,
// no goroutine of this Node is left and memberlist's have been told to
// stop; a memberlist probe in flight ends within one ProbeInterval and a
// connection handler within the TCP timeout. Idempotent: later calls wait
// for the first and return its result.
func (n *Node) Close() error {
	n.mu.Lock()
	switch n.state {
	case lifeOpen:
		n.state = lifeClosed
		n.mu.Unlock()
		n.teardown()
	case lifeLeaving:
		ld := n.leaveDone
		n.mu.Unlock()
		<-ld
	default:
		n.mu.Unlock()
		<-n.done
	}
	return n.shutdownErr
}

// teardown stops everything. It runs once, after the state became closed.
func (n *Node) teardown() {
	close(n.closing)
	n.ops.Wait()
	if err := n.ml.Shutdown(); err != nil {
		n.shutdownErr = fmt.Errorf("membership: shutdown: %w", err)
	}
	n.sink.close()
	n.dispatch.Wait()
	if n.cbEvents != nil {
		close(n.cbEvents)
	}
	close(n.done)
}
