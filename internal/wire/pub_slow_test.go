package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// testPublisher is the PUB side of a scenario: a wire.Pub, or a bare zmq4
// PUB for the bare-zmq4 tests.
type testPublisher interface {
	Endpoint() string
	Send(ctx context.Context, frames [][]byte) error
	Close()
}

type wirePub struct{ p *Pub }

func (w wirePub) Endpoint() string { return w.p.Endpoint() }
func (w wirePub) Send(ctx context.Context, frames [][]byte) error {
	return w.p.Send(ctx, &Msg{Frames: frames})
}
func (w wirePub) Close() { w.p.Close() }

type zmqPub struct{ s zmq4.Socket }

func newZmqPub(t *testing.T) zmqPub {
	t.Helper()
	s := zmq4.NewPub(context.Background(), zmq4.WithLogger(log.New(io.Discard, "", 0)))
	if err := s.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return zmqPub{s}
}

func (z zmqPub) Endpoint() string { return "tcp://" + z.s.Addr().String() }
func (z zmqPub) Send(_ context.Context, frames [][]byte) error {
	return z.s.Send(zmq4.NewMsgFrom(frames...))
}
func (z zmqPub) Close() { z.s.Close() }

// warmupSeq marks the probes sent until every subscriber is known to be
// subscribed; the measured flow starts at seq 0 after them.
const warmupSeq = 1<<64 - 1

func seqOf(b []byte) uint64 {
	if len(b) < 8 {
		return warmupSeq - 1 // never a valid seq in these tests
	}
	return binary.BigEndian.Uint64(b)
}

// slowScenario is defect 1: three subscribers, 100,000 messages of 1 KiB
// at 20,000/s, and one subscriber that stops reading until it is cut off.
type slowScenario struct {
	n       int    // messages in the flow
	rate    int    // messages per second
	size    int    // payload bytes
	stallAt uint64 // the stalled subscriber stops after this seq, until resume is closed
}

// healthyRecv is what one healthy subscriber saw.
type healthyRecv struct {
	warm     int
	received int
	maxGap   time.Duration
	gapAt    uint64 // seq that arrived after the longest gap
	errs     []string
}

// stalledRecv is what the stalled subscriber saw.
type stalledRecv struct {
	warm         int
	oldReceived  int    // messages of the first connection (seq 0..oldReceived-1)
	disconnected bool   // a Disconnected delivery ended the first connection
	connects     int    // Connected deliveries, the first included
	newFirst     uint64 // first seq after reconnecting
	newReceived  int
	stoppedAt    time.Time
	errs         []string
}

func (sc slowScenario) run(t *testing.T, pub testPublisher, resume <-chan struct{}) ([2]healthyRecv, stalledRecv) {
	ctx := testCtx(t, 90*time.Second)
	subs := make([]*Sub, 3)
	for i := range subs {
		subs[i] = NewSub(SubConfig{}, "t")
		defer subs[i].Close()
		if err := subs[i].Connect(pub.Endpoint()); err != nil {
			t.Fatal(err)
		}
	}
	var warm sync.WaitGroup
	warm.Add(3)
	var wg sync.WaitGroup
	var healthy [2]healthyRecv
	last := uint64(sc.n - 1)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &healthy[i]
			var warmOnce sync.Once
			var next uint64
			var prev time.Time
			for next <= last {
				d, err := subs[i].Recv(ctx)
				if err != nil {
					h.errs = append(h.errs, fmt.Sprintf("recv after seq %d: %v", next, err))
					return
				}
				if d.Kind != Message {
					if d.Kind == Disconnected {
						h.errs = append(h.errs, fmt.Sprintf("disconnected at seq %d: %v", next, d.Err))
					}
					continue
				}
				seq := seqOf(d.Frames[1])
				if seq == warmupSeq {
					h.warm++
					warmOnce.Do(warm.Done)
					continue
				}
				now := time.Now()
				if seq != next && len(h.errs) < 5 {
					h.errs = append(h.errs, fmt.Sprintf("got seq %d, want %d", seq, next))
				}
				if !prev.IsZero() && now.Sub(prev) > h.maxGap {
					h.maxGap, h.gapAt = now.Sub(prev), seq
				}
				prev, next = now, seq+1
				h.received++
			}
		}()
	}
	var stalled stalledRecv
	stopped := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			select {
			case <-stopped:
			default:
				close(stopped)
			}
		}()
		s := &stalled
		var warmOnce sync.Once
		var next uint64
		session := 1
		for {
			d, err := subs[2].Recv(ctx)
			if err != nil {
				s.errs = append(s.errs, fmt.Sprintf("recv in connection %d after seq %d: %v", session, next, err))
				return
			}
			switch d.Kind {
			case Connected:
				s.connects++
				continue
			case Disconnected:
				if session == 1 {
					s.disconnected = true
				}
				session++
				continue
			}
			seq := seqOf(d.Frames[1])
			if seq == warmupSeq {
				s.warm++
				warmOnce.Do(warm.Done)
				continue
			}
			switch {
			case session == 1 && seq != next:
				s.errs = append(s.errs, fmt.Sprintf("first connection: got seq %d, want %d", seq, next))
			case session == 2 && s.newReceived == 0:
				s.newFirst = seq
			case session == 2 && seq != next:
				s.errs = append(s.errs, fmt.Sprintf("second connection: got seq %d, want %d", seq, next))
			case session > 2:
				s.errs = append(s.errs, fmt.Sprintf("connection %d: unexpected", session))
			}
			if session == 1 {
				s.oldReceived++
			} else {
				s.newReceived++
			}
			next = seq + 1
			if seq == sc.stallAt && session == 1 {
				s.stoppedAt = time.Now()
				close(stopped)
				select { // the outage of this subscriber: it reads nothing meanwhile
				case <-resume:
				case <-ctx.Done():
					return
				}
			}
			if seq == last {
				return
			}
		}
	}()

	// Probe until all three subscriptions are in place.
	warmed := make(chan struct{})
	go func() { warm.Wait(); close(warmed) }()
	probe := time.NewTicker(5 * time.Millisecond)
	defer probe.Stop()
	for ready := false; !ready; {
		if err := pub.Send(ctx, [][]byte{[]byte("t"), seqPayload(nil, warmupSeq, 8)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-warmed:
			ready = true
		case <-probe.C:
		case <-ctx.Done():
			t.Fatal("subscribers never subscribed")
		}
	}

	// The flow: sc.rate messages per second, paced by a 1 ms ticker.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < sc.n; {
		due := min(sc.n, int(time.Since(start).Seconds()*float64(sc.rate))+1)
		for ; i < due; i++ {
			frames := [][]byte{[]byte("t"), seqPayload(nil, uint64(i), sc.size)}
			if err := pub.Send(ctx, frames); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("flow stuck at %d", i)
		}
	}
	t.Logf("flow of %d messages took %v", sc.n, time.Since(start).Round(time.Millisecond))
	wg.Wait()
	return healthy, stalled
}

var defect1 = slowScenario{n: 100_000, rate: 20_000, size: 1024, stallAt: 10_000}

// TestSlowSubscriberDoesNotStallOthers is defect 1: zmq4's PUB writes each
// message to every subscriber in turn with blocking writes, so one
// subscriber that stops reading stops everyone. With wire.Pub the two
// healthy subscribers receive all 100,000 messages in order; the stalled
// one is disconnected as a slow consumer once its queue passes
// MaxQueueBytes, is counted, and reconnects by itself; and every message
// addressed to it is either received or counted as dropped. It resumes
// reading once it was cut off. The longest
// gap the healthy subscribers saw is logged, not asserted: it belongs to
// BenchmarkStalledPeers.
func TestSlowSubscriberDoesNotStallOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s of traffic")
	}
	var events eventLog
	cut := make(chan struct{})
	var cutOnce sync.Once
	onEvent := func(ev PeerEvent) {
		events.add(ev)
		if ev.Type == PeerSlow {
			cutOnce.Do(func() { close(cut) })
		}
	}
	// SlowTimeout is long so that no healthy subscriber is cut on a busy
	// machine; MaxQueueBytes cuts the stalled one once the kernel's
	// buffers (at most 36 MiB on Linux by default) and 4 MiB of queue are
	// full: within the 90 MiB that follow the stall.
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{SlowTimeout: 20 * time.Second, QueueBytes: 256 << 10, MaxQueueBytes: 4 << 20, OnEvent: onEvent})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	healthy, stalled := defect1.run(t, wirePub{p}, cut)

	for i, h := range healthy {
		t.Logf("healthy subscriber %d: %d messages, longest gap %v (before seq %d)", i, h.received, h.maxGap.Round(time.Millisecond), h.gapAt)
		if h.received != defect1.n || len(h.errs) > 0 {
			t.Errorf("healthy subscriber %d: received %d of %d; %v", i, h.received, defect1.n, h.errs)
		}
	}
	slow := events.of(PeerSlow)
	st := p.Stats()
	t.Logf("stalled subscriber: %d messages, stopped, then %d after reconnecting from seq %d; pub stats %+v", stalled.oldReceived, stalled.newReceived, stalled.newFirst, st)
	if len(slow) != 1 || st.SlowConsumers != 1 || !errors.Is(slow[0].Err, ErrSlowConsumer) {
		t.Fatalf("slow consumer events %v, stats %+v; want exactly one", slow, st)
	}
	if len(stalled.errs) > 0 || !stalled.disconnected || stalled.connects != 2 || stalled.newReceived == 0 {
		t.Errorf("stalled subscriber: disconnected %v, connects %d, %d messages after reconnecting; %v",
			stalled.disconnected, stalled.connects, stalled.newReceived, stalled.errs)
	}
	if st.Dropped == 0 || st.Dropped != uint64(slow[0].Dropped) {
		t.Errorf("Dropped %d, PeerSlow event says %d", st.Dropped, slow[0].Dropped)
	}
	// Nothing vanishes: every message addressed to the stalled subscriber's
	// first connection was received or counted as dropped.
	want := uint64(healthy[0].warm+healthy[1].warm+stalled.warm) + 2*uint64(defect1.n) +
		uint64(stalled.oldReceived) + st.Dropped + uint64(stalled.newReceived)
	if st.Sent != want {
		t.Errorf("Sent %d, but subscribers received or were counted as dropped %d", st.Sent, want)
	}
}

// stalledPeers is the scenario behind BenchmarkStalledPeers and
// TestStalledPeersDoNotStallHealthy: two wire.Subs that read, k raw
// subscribers that completed the handshake, subscribed and never read,
// and n messages of 1 KiB at rate per second.
type stalledPeers struct {
	k, n, rate int
	cfg        PubConfig
}

type stalledResult struct {
	received  [2]int
	gaps      [2]time.Duration // longest gap between two messages of each healthy subscriber
	errs      []string
	stalledBy map[string]bool // local addresses of the stalled connections
	events    *eventLog
	stats     PubStats
}

func (sc stalledPeers) run(tb testing.TB) stalledResult {
	res := stalledResult{events: &eventLog{}, stalledBy: map[string]bool{}}
	cfg := sc.cfg
	cfg.OnEvent = res.events.add
	p, err := Listen("tcp://127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < sc.k; i++ {
		nc := dialRawSub(tb, p.Endpoint(), "t", 16<<10)
		res.stalledBy[nc.LocalAddr().String()] = true
	}
	subs := make([]*Sub, 2)
	for i := range subs {
		subs[i] = NewSub(SubConfig{}, "t")
		defer subs[i].Close()
		if err := subs[i].Connect(p.Endpoint()); err != nil {
			tb.Fatal(err)
		}
	}
	waitFor(tb, 10*time.Second, "every subscription", func() bool { return len(res.events.of(PeerSubscribed)) == sc.k+2 })
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev time.Time
			for next := uint64(0); next < uint64(sc.n); {
				d, err := subs[i].Recv(ctx)
				if err != nil {
					mu.Lock()
					res.errs = append(res.errs, fmt.Sprintf("subscriber %d after %d: %v", i, next, err))
					mu.Unlock()
					return
				}
				if d.Kind == Disconnected {
					mu.Lock()
					res.errs = append(res.errs, fmt.Sprintf("subscriber %d disconnected after %d: %v", i, next, d.Err))
					mu.Unlock()
				}
				if d.Kind != Message {
					continue
				}
				now := time.Now()
				if seq := seqOf(d.Frames[1]); seq != next {
					mu.Lock()
					res.errs = append(res.errs, fmt.Sprintf("subscriber %d: seq %d, want %d", i, seq, next))
					mu.Unlock()
					next = seq // go on: the longest gap is still worth knowing
				}
				if !prev.IsZero() && now.Sub(prev) > res.gaps[i] {
					res.gaps[i] = now.Sub(prev)
				}
				prev = now
				next++
				res.received[i]++
			}
		}()
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < sc.n; {
		due := min(sc.n, int(time.Since(start).Seconds()*float64(sc.rate))+1)
		for ; i < due; i++ {
			if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), seqPayload(nil, uint64(i), 1024)}}); err != nil {
				tb.Fatalf("send %d: %v", i, err)
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			tb.Fatalf("flow stuck at %d", i)
		}
	}
	wg.Wait()
	res.stats = p.Stats()
	return res
}

// TestStalledPeersDoNotStallHealthy: with 1, 3 and 5 subscribers that
// never read, the two that read receive every message in order, and each
// stalled one is cut and reported as a slow consumer.
func TestStalledPeersDoNotStallHealthy(t *testing.T) {
	for _, k := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("stalled=%d", k), func(t *testing.T) {
			sc := stalledPeers{k: k, n: 10_000, rate: 20_000,
				cfg: PubConfig{SlowTimeout: 20 * time.Second, QueueBytes: 256 << 10, MaxQueueBytes: 4 << 20}}
			res := sc.run(t)
			t.Logf("longest gaps %v; stats %+v", res.gaps, res.stats)
			if res.received != [2]int{sc.n, sc.n} || len(res.errs) > 0 {
				t.Errorf("healthy subscribers received %v of %d: %v", res.received, sc.n, res.errs)
			}
			slow := res.events.of(PeerSlow)
			for _, ev := range slow {
				if !res.stalledBy[ev.Remote] {
					t.Errorf("a healthy subscriber (%s) was cut as slow: %v", ev.Remote, ev.Err)
				}
			}
			if len(slow) != k || res.stats.SlowConsumers != uint64(k) {
				t.Errorf("%d PeerSlow events, stats %+v; want %d", len(slow), res.stats, k)
			}
		})
	}
}

// BenchmarkStalledPeers measures what stalled subscribers cost the
// healthy ones: the longest gap between two messages a healthy subscriber
// saw while 1, 3 and 5 others stopped reading (SlowTimeout 200 ms,
// QueueBytes 256 KiB, 20,000 messages of 1 KiB per second for 1.5 s).
//
//	go test -run '^$' -bench StalledPeers -benchtime 1x -count 3 ./internal/wire/
func BenchmarkStalledPeers(b *testing.B) {
	for _, k := range []int{1, 3, 5} {
		b.Run(fmt.Sprintf("stalled=%d", k), func(b *testing.B) {
			var worst time.Duration
			for i := 0; i < b.N; i++ {
				res := stalledPeers{k: k, n: 30_000, rate: 20_000,
					cfg: PubConfig{SlowTimeout: 200 * time.Millisecond, QueueBytes: 256 << 10}}.run(b)
				if len(res.errs) > 0 {
					// A healthy subscriber that did not read for SlowTimeout
					// (a busy machine) is cut too; say so next to the number.
					b.Logf("healthy subscribers: %v", res.errs)
				}
				worst = max(worst, res.gaps[0], res.gaps[1])
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-gap-ms")
		})
	}
}

// TestBareZmq4SlowSubscriberStallsOthers asserts that zmq4's PUB still
// lets one subscriber that does not read stop every other: with one raw
// subscriber that never reads, a healthy wire.Sub does not get the
// 20,000 messages (20 MiB, well over the kernel's buffers) that zmq4's
// Send accepted, until the stalled one goes away. If zmq4 ever fixes
// this, the test fails: revisit the workaround in docs/transport.md.
func TestBareZmq4SlowSubscriberStallsOthers(t *testing.T) {
	const n = 20_000
	ctx := testCtx(t, time.Minute)
	pub := newZmqPub(t)
	defer pub.Close()
	stalled := dialRawSub(t, pub.Endpoint(), "t", 16<<10)
	sub := NewSub(SubConfig{}, "") // a prefix of its own, so zmq4's Topics shows both
	defer sub.Close()
	if err := sub.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "both subscriptions", func() bool { return len(pub.s.(zmq4.Topics).Topics()) == 2 })
	var got atomic.Int64
	go func() {
		for {
			d, err := sub.Recv(ctx)
			if err != nil {
				return
			}
			if d.Kind == Message {
				got.Add(1)
			}
		}
	}()
	payload := make([]byte, 1024)
	for i := 0; i < n; i++ {
		if err := pub.Send(ctx, [][]byte{[]byte("t"), payload}); err != nil {
			t.Fatal(err)
		}
	}
	if pollUntil(3*time.Second, func() bool { return got.Load() == n }) {
		t.Fatalf("zmq4 delivered all %d messages to the healthy subscriber while another did not read: the defect is fixed, revisit the workaround (docs/transport.md, defect 1)", n)
	}
	t.Logf("zmq4: the healthy subscriber got %d of %d messages while one subscriber did not read", got.Load(), n)
	stalled.Close()
}

// slowReader reads at most chunk bytes per call and pauses after each
// read: a subscriber that keeps reading, slower than the publisher can
// send.
type slowReader struct {
	r     io.Reader
	chunk int
	pause time.Duration
}

func (s slowReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b[:min(len(b), s.chunk)])
	time.Sleep(s.pause) // the reader's own slowness, not synchronisation
	return n, err
}

// TestSlowReaderGetsBackpressure: one subscriber reads as fast as it can,
// one keeps reading at a few MiB/s, and the publisher sends 20 MiB as fast
// as Send lets it, five times MaxQueueBytes. Send paces to the fastest
// subscriber until the slow one is lagBytes behind, then waits for it:
// the slow subscriber is never cut and both receive everything, where
// pacing to the fastest alone would have cut it at MaxQueueBytes.
func TestSlowReaderGetsBackpressure(t *testing.T) {
	const n, size = 20_000, 1024
	ctx := testCtx(t, time.Minute)
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{SlowTimeout: 20 * time.Second, QueueBytes: 256 << 10,
		MaxQueueBytes: 4 << 20, SendBuffer: 64 << 10, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fast, slow := dialRawSub(t, p.Endpoint(), "t", 64<<10), dialRawSub(t, p.Endpoint(), "t", 64<<10)
	if !pollUntil(10*time.Second, func() bool { return len(events.of(PeerSubscribed)) == 2 }) {
		t.Fatal("subscriptions never arrived")
	}
	counts := make(chan int, 2)
	for _, r := range []io.Reader{fast, slowReader{r: slow, chunk: 8 << 10, pause: time.Millisecond}} {
		go func() {
			got, _ := countMessages(r, nil)
			counts <- got
		}()
	}
	for i := 0; i < n; i++ { // a buffer per message: the Pub keeps it until written
		if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), seqPayload(nil, uint64(i), size)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Shutdown(ctx, nil); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	got := [2]int{<-counts, <-counts}
	t.Logf("received %v (of %d after warm-up), stats %+v", got, n, st)
	if st.SlowConsumers != 0 || len(events.of(PeerSlow)) != 0 {
		t.Fatalf("a subscriber that kept reading was cut as slow: %+v", st)
	}
	if got != [2]int{n, n} {
		t.Fatalf("received %v, want %d each", got, n)
	}
}
