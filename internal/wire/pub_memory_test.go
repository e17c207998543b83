package wire

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// msgPool is the caller-side pool the Msg contract exists for: OnFree
// hands a message back, and the next Send reuses its buffers. made is the
// most messages that were ever out at once, that is, held by the Pub.
type msgPool struct {
	mu    sync.Mutex
	free  []*Msg
	made  int
	topic []byte
	size  int
}

func newMsgPool(topic string, size int) *msgPool {
	return &msgPool{topic: []byte(topic), size: size}
}

func (p *msgPool) get() *Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		m := p.free[n-1]
		p.free = p.free[:n-1]
		return m
	}
	p.made++
	return &Msg{Frames: [][]byte{p.topic, make([]byte, p.size)}, OnFree: p.put}
}

func (p *msgPool) put(m *Msg) {
	p.mu.Lock()
	p.free = append(p.free, m)
	p.mu.Unlock()
}

func (p *msgPool) outstanding() (made, free int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.made, len(p.free)
}

// heapSampler records the peak HeapInuse above a baseline taken after a GC.
type heapSampler struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapSampler{base: ms.HeapInuse, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
			select {
			case <-tick.C:
			case <-h.stop:
				return
			}
		}
	}()
	return h
}

// finish stops sampling and returns the peak growth over the baseline.
func (h *heapSampler) finish() uint64 {
	close(h.stop)
	<-h.done
	if p := h.peak.Load(); p > h.base {
		return p - h.base
	}
	return 0
}

// memScenario is defect 2: one publisher, a subscriber that reads
// everything and one that reads nothing, and a million 64-byte messages
// pumped as fast as Send takes them.
type memScenario struct {
	n, size    int
	queueBytes int
}

func (sc memScenario) counted() int { return len("t") + 9 + sc.size + 9 }

// subscribers connects the reading and the stalled raw subscriber. The
// stalled one has a small receive buffer so the publisher feels it soon.
func (sc memScenario) subscribers(t *testing.T, endpoint string) (healthy *atomic.Int64, healthyDone chan error, stalled net.Conn) {
	healthy = new(atomic.Int64)
	healthyDone = make(chan error, 1)
	hc := dialRawSub(t, endpoint, "t", 0)
	go func() {
		_, err := countMessages(hc, func(int) { healthy.Add(1) })
		healthyDone <- err
	}()
	stalled = dialRawSub(t, endpoint, "t", 32<<10)
	return healthy, healthyDone, stalled
}

var defect2 = memScenario{n: 1_000_000, size: 64, queueBytes: 1 << 20}

// TestPubMemoryBounded is defect 2: zmq4's PUB queues without limit in
// front of a writer that is blocked on the slowest subscriber. wire.Pub
// holds at most two queues' worth per subscriber (the queue, and the batch
// its writer is writing), so its heap stays under a bound that depends on
// QueueBytes, not on how much is published. It also shows the losses are
// counted: every message addressed to the stalled subscriber either
// reached it or is in PubStats.Dropped.
func TestPubMemoryBounded(t *testing.T) {
	sc := defect2
	if testing.Short() {
		sc.n = 200_000
	}
	ctx := testCtx(t, 2*time.Minute)
	var events eventLog
	heap := startHeapSampler()
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{QueueBytes: sc.queueBytes, SlowTimeout: 200 * time.Millisecond, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	healthy, healthyDone, stalled := sc.subscribers(t, p.Endpoint())
	waitFor(t, 5*time.Second, "two subscriptions", func() bool {
		s := *p.snap.Load()
		return len(s) == 2 && s[0].subscribed([]byte("t")) && s[1].subscribed([]byte("t"))
	})

	pool := newMsgPool("t", sc.size)
	start := time.Now()
	for i := 0; i < sc.n; i++ {
		m := pool.get()
		fillSeq(m.Frames[1], uint64(i))
		if err := p.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	waitFor(t, 30*time.Second, "the reading subscriber to get everything", func() bool { return healthy.Load() == int64(sc.n) })
	grew := heap.finish()
	t.Logf("pumped in %v, delivered after %v", elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The stalled subscriber reads now: what reached its kernel buffers
	// before it was cut off, then EOF.
	if err := stalled.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	readStart := time.Now()
	got, err := countMessages(stalled, nil)
	t.Logf("stalled subscriber read its backlog in %v", time.Since(readStart).Round(time.Millisecond))
	if err == nil || isTimeout(err) {
		t.Fatalf("stalled subscriber: %d messages, then %v; want EOF", got, err)
	}
	st := p.Stats()
	slow := events.of(PeerSlow)
	made, _ := pool.outstanding()
	perQueue := sc.queueBytes/sc.counted() + 1
	t.Logf("%d messages of %d B in %v (%.0f msg/s); pool made %d messages (%d per full queue); heap grew %.1f MiB; stalled subscriber got %d; stats %+v",
		sc.n, sc.size, elapsed.Round(time.Millisecond), float64(sc.n)/elapsed.Seconds(), made, perQueue, float64(grew)/(1<<20), got, st)

	// Held messages: per subscriber a full queue plus a full batch being
	// written plus the one Send waits with; the two subscribers share them.
	if limit := 2 * (2*perQueue + 1); made > limit+1 {
		t.Errorf("the Pub held %d messages at once, limit %d", made, limit)
	}
	// Heap: those messages (topic shared; 64 B payload, its 48 B Frames
	// array and the 48 B Msg), and for each of them, per subscriber, a slot
	// in the queue, the writer's batch and its offsets (8 B each, twice for
	// what append growth leaves to the GC); per subscriber a 64 KiB write
	// buffer and 128 KiB read side; the test's two 64 KiB readers; 1 MiB
	// of slack for the runtime and the GC's timing.
	const perMsg = 64 + 48 + 48 + 2*3*8*2
	if limit := uint64(made*perMsg + 2*(192<<10) + 2*(64<<10) + 1<<20); grew > limit {
		t.Errorf("heap grew %.1f MiB, limit %.1f MiB", float64(grew)/(1<<20), float64(limit)/(1<<20))
	}
	if len(slow) != 1 || st.SlowConsumers != 1 || st.Dropped == 0 || st.Dropped != uint64(slow[0].Dropped) {
		t.Errorf("slow events %+v, stats %+v: want one slow consumer with its drops counted", slow, st)
	}
	if want := uint64(sc.n) + uint64(got) + st.Dropped; st.Sent != want {
		t.Errorf("Sent %d != received %d + %d + Dropped %d: a loss went uncounted", st.Sent, sc.n, got, st.Dropped)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-healthyDone; err == nil {
		t.Error("reading subscriber: no error after Close")
	}
	if made, free := pool.outstanding(); made != free {
		t.Errorf("after Close %d of %d messages never came back through OnFree", made-free, made)
	}
}

// TestBareZmq4PubMemoryUnbounded: the same pump into a zmq4 PUB. Send never
// pushes back; every message waits in an unbounded queue behind the
// writer that is blocked on the stalled subscriber.
func TestBareZmq4PubMemoryUnbounded(t *testing.T) {
	requireBare(t)
	sc := defect2
	heap := startHeapSampler()
	pub := newZmqPub(t)
	defer pub.Close()
	healthy, _, stalled := sc.subscribers(t, pub.Endpoint())
	defer stalled.Close()
	waitFor(t, 5*time.Second, "subscriptions", func() bool { return len(pub.s.(zmq4.Topics).Topics()) == 1 })
	start := time.Now()
	for i := 0; i < sc.n; i++ {
		payload := make([]byte, sc.size) // zmq4 keeps the slice: no reuse
		fillSeq(payload, uint64(i))
		if err := pub.Send(context.Background(), [][]byte{[]byte("t"), payload}); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	grew := heap.finish()
	t.Logf("%d messages in %v; heap grew %.1f MiB; the reading subscriber has %d", sc.n, elapsed, float64(grew)/(1<<20), healthy.Load())
	if limit := uint64(16 << 20); grew > limit {
		t.Errorf("zmq4: heap grew %.1f MiB with one stalled subscriber (wire.Pub's bound here: ~%d MiB)", float64(grew)/(1<<20), limit>>20)
	}
}

// TestBareZmq4HWMDropsSilently: zmq4's only bound is the HWM option, one
// limit for the whole socket, and a message over it is dropped with a nil
// error and no counter (pubMWriter.write), so the healthy subscriber
// loses messages and nobody can tell.
func TestBareZmq4HWMDropsSilently(t *testing.T) {
	requireBare(t)
	const n = 100_000
	ctx := testCtx(t, time.Minute)
	pub := newZmqPub(t)
	defer pub.Close()
	if err := pub.s.SetOption(zmq4.OptionHWM, 1000); err != nil && !errors.Is(err, zmq4.ErrBadProperty) {
		t.Fatal(err)
	}
	sub := NewSub(SubConfig{}, "t")
	defer sub.Close()
	if err := sub.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	stalled := dialRawSub(t, pub.Endpoint(), "t", 32<<10)
	waitFor(t, 5*time.Second, "subscriptions", func() bool { return len(pub.s.(zmq4.Topics).Topics()) == 1 })
	var got atomic.Int64
	marker := make(chan struct{})
	go func() {
		for {
			d, err := sub.Recv(ctx)
			if err != nil {
				return
			}
			if d.Kind != Message {
				continue
			}
			if seqOf(d.Frames[1]) == warmupSeq {
				close(marker)
				return
			}
			got.Add(1)
		}
	}()
	for i := 0; i < n; i++ {
		if err := pub.Send(ctx, [][]byte{[]byte("t"), seqPayload(nil, uint64(i), 64)}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	stalled.Close() // unblock zmq4's writer so the rest reaches the reading subscriber
	// An end marker, resent until it arrives (it may be dropped too): what
	// was not dropped arrived before it on the same connection.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		if err := pub.Send(ctx, [][]byte{[]byte("t"), seqPayload(nil, warmupSeq, 8)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-marker:
			done = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("end marker never arrived")
		}
	}
	t.Logf("Send returned nil %d times; the reading subscriber got %d", n, got.Load())
	if got.Load() != n {
		t.Errorf("zmq4: %d of %d messages silently dropped: every Send returned nil and no counter exists", n-got.Load(), n)
	}
}
