//go:build unix

package relay

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
)

// chain is an origin, the relays between it and the leaf subscribers,
// and those subscribers' counts.
type chain struct {
	origin *coord.Publisher
	relays []<-chan error
	subs   []*coord.Subscriber
	leaves []*leaf
}

// leaf counts deliveries and records each one's latency: the payload's
// first 8 bytes are the origin's time.Now().UnixNano() at Publish.
type leaf struct {
	mu    sync.Mutex
	n     int
	lat   []time.Duration
	ended chan struct{}
}

func (l *leaf) handle(ev coord.Event) {
	switch ev.Type {
	case coord.EventMessage:
		d := time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(ev.Payload)))
		l.mu.Lock()
		l.n++
		l.lat = append(l.lat, d)
		l.mu.Unlock()
	case coord.EventEnd:
		close(l.ended)
	}
}

// newChain builds origin -> hops relays -> subs subscribers on loopback.
// reencode makes the relays publish every record again (PublishSeq)
// instead of forwarding messages whole.
func newChain(tb testing.TB, ctx context.Context, hops, subs, count int, reencode bool) *chain {
	tb.Helper()
	c := &chain{}
	var err error
	if c.origin, err = coord.NewPublisher(loopbackPublisher(1)); err != nil {
		tb.Fatal(err)
	}
	up := c.origin
	for i := range hops {
		expect := 1
		if i == hops-1 {
			expect = subs
		}
		r, err := New(Config{
			Upstream:   coord.SubscriberConfig{Connect: up.Endpoint(), Sync: up.SyncEndpoint(), ID: fmt.Sprintf("relay-%d", i)},
			Downstream: loopbackPublisher(expect),
		})
		if err != nil {
			tb.Fatal(err)
		}
		r.reencode = reencode
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		c.relays = append(c.relays, done)
		up = waitPublisher(tb, ctx, r)
	}
	if hops == 0 {
		c.origin.Close()
		cfg := loopbackPublisher(subs)
		if c.origin, err = coord.NewPublisher(cfg); err != nil {
			tb.Fatal(err)
		}
		up = c.origin
	}
	for i := range subs {
		l := &leaf{lat: make([]time.Duration, 0, count), ended: make(chan struct{})}
		s, err := coord.NewSubscriber(coord.SubscriberConfig{Connect: up.Endpoint(), Sync: up.SyncEndpoint(), ID: fmt.Sprintf("leaf-%d", i), Handler: l.handle})
		if err != nil {
			tb.Fatal(err)
		}
		c.subs, c.leaves = append(c.subs, s), append(c.leaves, l)
	}
	return c
}

// run publishes count records of size bytes at rate per second (0: as
// fast as possible) and waits until every leaf ended.
func (c *chain) run(tb testing.TB, ctx context.Context, count, size, topics int, rate float64) time.Duration {
	if err := c.origin.WaitQuorum(ctx); err != nil {
		tb.Fatal(err)
	}
	payload := make([]byte, size)
	start := time.Now()
	for i := range count {
		if rate > 0 {
			if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
				time.Sleep(wait) // pacing a benchmark's load, not synchronising
			}
		}
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		if _, err := c.origin.Publish(ctx, benchTopics[i%topics], payload); err != nil {
			tb.Fatal(err)
		}
	}
	if err := c.origin.Shutdown(ctx); err != nil {
		for i, done := range c.relays {
			tb.Logf("relay %d: %v", i, <-done)
		}
		tb.Fatal(err)
	}
	for _, l := range c.leaves {
		<-l.ended
	}
	el := time.Since(start)
	for _, done := range c.relays {
		if err := <-done; err != nil {
			tb.Fatal(err)
		}
	}
	for _, s := range c.subs {
		s.Close()
	}
	return el
}

// benchTopics are the topics a job publishes to, round robin: with more
// than one, a busy origin sends MULTI messages.
var benchTopics = []string{"bench", "bench.b", "bench.c"}

func (c *chain) latencies() []time.Duration {
	var all []time.Duration
	for _, l := range c.leaves {
		all = append(all, l.lat...)
	}
	slices.Sort(all)
	return all
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// BenchmarkRelayHops runs the same job direct, through one relay and
// through two, with the relays forwarding upstream messages whole, and
// through one relay that publishes every record again (re-encode, the
// relay's first form), interleaved in rounds within one run so that the
// machine's load falls on all of them alike: deliveries per second and
// the process's CPU per record with the origin publishing as fast as it
// can, and the latency from Publish to the leaf's Handler at a steady
// 20,000/s. Every node shares this process's cores, so a relay's CPU per
// record is its job's minus direct's. The 3topics shapes publish round
// robin on three topics, so the origin, when busy, sends MULTI messages.
// Each metric is the median of the rounds. -benchtime 1x runs it once.
func BenchmarkRelayHops(b *testing.B) {
	const subs, size, rounds = 2, 100, 3
	count, rate, paced := 200_000, 20_000.0, 40_000
	if testing.Short() {
		count, paced = 20_000, 5_000
	}
	type shape struct {
		name     string
		hops     int
		reencode bool
		topics   int
	}
	shapes := []shape{{"direct", 0, false, 1}, {"hop1", 1, false, 1}, {"hop1-reencode", 1, true, 1}, {"hop2", 2, false, 1},
		{"3topics-direct", 0, false, 3}, {"3topics-hop1", 1, false, 3}, {"3topics-hop1-reencode", 1, true, 3}}
	for range b.N {
		thr := make([][]float64, len(shapes))
		cpu := make([][]float64, len(shapes))
		p50 := make([][]float64, len(shapes))
		p99 := make([][]float64, len(shapes))
		for range rounds {
			for i, sh := range shapes {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				c := newChain(b, ctx, sh.hops, subs, count, sh.reencode)
				c0 := processCPU(b)
				el := c.run(b, ctx, count, size, sh.topics, 0)
				cpu[i] = append(cpu[i], float64((processCPU(b)-c0).Nanoseconds())/float64(count))
				thr[i] = append(thr[i], float64(count*subs)/el.Seconds())
				c = newChain(b, ctx, sh.hops, subs, paced, sh.reencode)
				c.run(b, ctx, paced, size, sh.topics, rate)
				lat := c.latencies()
				p50[i] = append(p50[i], float64(pct(lat, 50).Microseconds()))
				p99[i] = append(p99[i], float64(pct(lat, 99).Microseconds()))
				cancel()
			}
		}
		for i, sh := range shapes {
			b.ReportMetric(median(thr[i]), sh.name+"-deliveries/s")
			b.ReportMetric(median(cpu[i]), sh.name+"-cpu-ns/record")
			b.ReportMetric(median(p50[i]), sh.name+"-p50-µs")
			b.ReportMetric(median(p99[i]), sh.name+"-p99-µs")
		}
	}
}

// processCPU is the CPU time (user and system) this process used so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkSentWhole: the handler's check, per record, of whether a
// record went downstream in the message forwarded whole, for a MULTI of
// one record on each of 1,000 topics taken in order.
func BenchmarkSentWhole(b *testing.B) {
	r := &Relay{}
	for i := range 1000 {
		r.whole = append(r.whole, wholeRun{fmt.Sprintf("t%04d", i), uint64(i + 1)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w := r.whole[i%len(r.whole)]
		if !r.sentWhole(w.topic, w.through) {
			b.Fatal("not found")
		}
	}
}
