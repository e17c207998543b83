package coord

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/proto/handshake"
	"github.com/syncmq/syncmq/recovery"

	"github.com/go-zeromq/zmq4"
	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/internal/wire"
	"go.uber.org/zap"
)

// link is a subscriber's connection to one publisher's endpoints: the
// sync client, recovery clients and the goroutine that runs fetches.
type link struct {
	eps  Endpoints
	tls  *wire.TLS // the subscriber's, for tls:// recovery endpoints
	sync *wire.Client
	jobs chan fetchJob
	stop context.CancelFunc
	g    gogroup.Group

	// singleFetch is set once the recovery endpoint refused FETCH_MANY
	// (a protocol 1.0 publisher): repairs go one topic per request.
	singleFetch atomic.Bool

	mu  sync.Mutex
	rec map[string]*wire.Client // by recovery endpoint

	// up is set while the data connection is up, wasUp once it has been;
	// owned by the Subscriber's run goroutine (noteConnection).
	up, wasUp bool

	replay replayResult // the fetcher's REPLAY in run's hands, see replayed
}

// AddPublisher connects to another publisher. Adding the same PUB endpoint
// twice is a no-op. Safe from any goroutine.
func (s *Subscriber) AddPublisher(eps Endpoints) error {
	if err := eps.validate(s.cfg.TLS); err != nil {
		return err
	}
	sync, err := wire.NewClient(eps.Sync, wire.ClientConfig{Timeout: s.cfg.HandshakeTimeout, Attempts: s.cfg.HandshakeAttempts, TLS: s.cfg.TLS.wireTLS()})
	if err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.links[eps.Pub]; ok {
		s.mu.Unlock()
		sync.Close()
		return nil
	}
	ctx, stop := context.WithCancel(s.ctx)
	l := &link{eps: eps, tls: s.cfg.TLS.wireTLS(), sync: sync, jobs: make(chan fetchJob, 1024), stop: stop, rec: make(map[string]*wire.Client)}
	l.replay.processed = make(chan struct{}, 1)
	s.links[eps.Pub] = l
	s.mu.Unlock()
	if !s.g.Go(func() { s.fetcher(ctx, l) }) {
		return ErrClosed
	}
	s.lg.Info("connecting to publisher", zap.String("pub", eps.Pub), zap.String("sync", eps.Sync))
	return s.sub.Connect(eps.Pub)
}

// RemovePublisher disconnects from the publisher at PUB endpoint pub, e.g.
// when membership reports it gone. Its streams stay until it returns with
// a new epoch. Safe from any goroutine.
func (s *Subscriber) RemovePublisher(pub string) {
	s.mu.Lock()
	l, ok := s.links[pub]
	delete(s.links, pub)
	s.mu.Unlock()
	if !ok {
		return
	}
	s.sub.Disconnect(pub)
	l.close()
}

// Publishers returns the PUB endpoints currently connected or connecting.
func (s *Subscriber) Publishers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.links))
	for ep := range s.links {
		out = append(out, ep)
	}
	return out
}

func (l *link) close() {
	l.stop()
	l.g.Wait()
	l.sync.Close()
	l.mu.Lock()
	for _, c := range l.rec {
		c.Close()
	}
	l.mu.Unlock()
}

func (l *link) recoveryClient(endpoint string) (*wire.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.rec[endpoint]; c != nil {
		return c, nil
	}
	// Borrow: a REPLAY is fed to its stream before the next one is read
	// (see replayed), so replies need no buffers of their own.
	c, err := wire.NewClient(endpoint, wire.ClientConfig{Type: zmq4.Dealer, Timeout: 2 * time.Second, Attempts: 1, TLS: l.tls, Borrow: true})
	if err != nil {
		return nil, err
	}
	l.rec[endpoint] = c
	return c, nil
}

// recoveryEndpoint picks where to send FETCH requests: the configured
// endpoint, else the ACK's with a wildcard host replaced by the PUB
// endpoint's host (the publisher binds "*" but is reached by name), and
// its scheme kept.
func recoveryEndpoint(configured, fromAck, pub string) string {
	if configured != "" {
		return configured
	}
	if fromAck == "" {
		return ""
	}
	scheme, addr, err := wire.ParseEndpoint(fromAck)
	if err != nil {
		return ""
	}
	if wire.IsLocal(fromAck) {
		return fromAck // a path or a name: nothing to resolve
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		pubAddr, err := wire.SplitEndpoint(pub)
		if err != nil {
			return ""
		}
		host, _, _ = net.SplitHostPort(pubAddr)
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func (s *Subscriber) post(r any) {
	select {
	case s.results <- r:
	case <-s.ctx.Done():
	}
}

type ackResult struct {
	ps    *pubState
	nonce string
	ack   *handshake.Ack
	err   error
}

func (s *Subscriber) onAck(r ackResult) {
	ps := r.ps
	ps.handshaking = false
	if s.pubs[ps.id] != ps {
		return // the publisher restarted meanwhile; its next HELLO starts over
	}
	if r.err == nil && (r.ack.Publisher != ps.id.String() || r.ack.Epoch != ps.epoch) {
		r.err = fmt.Errorf("coord: ACK from publisher %s epoch %d", r.ack.Publisher, r.ack.Epoch)
	}
	if r.err != nil {
		s.stats.handshakeErrors.Add(1)
		// The nonce stays valid while the data connection lives, so retry
		// it; a new connection brings a HELLO with a new nonce at once.
		ps.retryEvery = min(max(2*ps.retryEvery, 100*time.Millisecond), 2*time.Second)
		ps.retryAt = s.io.now().Add(ps.retryEvery)
		s.lg.Warn("sync handshake failed; retrying", zap.String("publisher", ps.id.Short()), zap.Duration("in", ps.retryEvery), zap.Error(r.err))
		return
	}
	s.stats.handshakes.Add(1)
	ps.retryEvery, ps.boundNonce = 0, r.nonce
	rejoin := ps.joined
	ps.joined = true
	moved := ps.recoveryLink != nil && ps.recoveryLink != ps.link
	ps.recovery = recoveryEndpoint(ps.link.eps.Recovery, r.ack.Recovery, ps.link.eps.Pub)
	ps.recoveryLink = ps.link
	resume := make(map[string]uint64, len(r.ack.Resume))
	for _, t := range r.ack.Resume {
		resume[t.Topic] = t.Seq
	}
	var ckpt map[string]uint64
	if !rejoin {
		ckpt = s.resumePoints(ps)
	}
	var before uint64
	now := s.io.now()
	for _, t := range r.ack.Topics {
		before += t.Seq
		if !s.wants(t.Topic) {
			continue
		}
		// A new stream starts after the join, or where this id first
		// joined (the publisher remembers it: this process restarted), or
		// at 1 for StartAtEarliest. An existing stream (this incarnation
		// was joined through an older connection) keeps its place and
		// learns from the table what it missed meanwhile.
		// Where a new stream starts, by priority: after this subscriber's
		// own checkpoint (StateDir); at 1 when it followed an earlier epoch
		// of this publisher, or rejoins this one on a new connection (all of
		// a topic new to it came after its join); where this id first
		// joined, if the publisher says it did (a restart without state);
		// at StartAt; after the join.
		start, joined := s.startAt(t.Seq), t.Seq
		if first, ok := resume[t.Topic]; ok && first < t.Seq {
			start, joined = first+1, first
		}
		if ps.restarted || rejoin {
			// Joined before: a topic new to this subscriber began after its join.
			start, joined = 1, 0
		}
		if last, ok := ckpt[t.Topic]; ok {
			start, joined = last+1, last
		}
		known := ps.streams[t.Topic] != nil
		ts := s.stream(ps, t.Topic, start, joined)
		ts.heard = max(ts.heard, t.Seq)
		// A stream this incarnation already follows learns what it
		// missed meanwhile from the live records and the next heartbeat
		// or END: records taken since the new connection subscribed are
		// still on their way, and asking for them would fetch them twice.
		switch {
		case r.ack.From > 0 && !rejoin && !known && start >= r.ack.From && ts.st.Next() <= t.Seq:
			// The publisher feeds the history on the data connection
			// (protocol 1.7): no FETCH for it. Until the first replayed
			// record, live records of before the join are dropped; they
			// come again.
			ts.catchUpTo = t.Seq
		case r.ack.From > 0 && rejoin && known && ts.st.Next() >= r.ack.From && ts.st.Next() <= t.Seq:
			// A rejoin fed from where the streams stand: the same, for a
			// stream that missed records while it had no connection.
			ts.catchUpTo = t.Seq
		case !(rejoin && known) && ts.st.Next() <= t.Seq:
			ts.st.Heartbeat(t.Seq, now) // ask for what was published before
		}
	}
	if moved {
		// Repairs asked of the old endpoint before this ACK may never be
		// answered: ask the new one, with a fresh deadline. A stream the
		// new endpoint feeds on the data connection asks nothing again:
		// the feed brings what it asked for, and its request waits
		// (Feeding) rather than compete with the feed for the records.
		for _, ts := range ps.streamsInOrder() {
			if ts.catchUpTo > 0 {
				ts.st.SetCauseHint(recovery.CauseReconnect)
				ts.st.Feeding(now)
				continue
			}
			ts.st.Reconnected(now)
		}
	}
	if rejoin {
		s.lg.Info("rejoined publisher on a new connection", zap.String("publisher", ps.id.Short()), zap.Uint64("epoch", ps.epoch),
			zap.Uint64("catch_up_from", r.ack.From)) // 0: what it missed is fetched
		return
	}
	s.evid.joined(&s.evidMu, before)
	s.lg.Info("joined publisher", zap.String("publisher", ps.id.Short()), zap.Uint64("epoch", ps.epoch),
		zap.Int("joined", r.ack.Joined), zap.Int("expect", r.ack.Expect), zap.Bool("quorum", r.ack.Quorum),
		zap.String("recovery", ps.recovery), zap.Bool("resumed", len(resume) > 0))
	s.emit(Event{Type: EventJoined, Publisher: ps.id, Epoch: ps.epoch, Endpoint: ps.link.eps.Pub})
	held := ps.held
	ps.held, ps.heldRecords = nil, 0
	s.replayingHeld = true
	for i := range held {
		s.process(ps, &held[i], now)
	}
	s.connectSettled = true
	s.replayingHeld = false
	s.readyOnce.Do(func() { close(s.ready) })
}

// onResult dispatches what handshake and fetch goroutines report.
func (s *Subscriber) onResult(r any) {
	switch r := r.(type) {
	case ackResult:
		s.onAck(r)
	case fetchResult:
		s.onFetch(r)
	case *replayResult:
		s.onFetch(r.fetchResult)
		r.processed <- struct{}{}
	}
}
