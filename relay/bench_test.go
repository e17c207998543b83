package relay

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
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
func newChain(tb testing.TB, ctx context.Context, hops, subs, count int) *chain {
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
func (c *chain) run(tb testing.TB, ctx context.Context, count, size int, rate float64) time.Duration {
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
		if _, err := c.origin.Publish(ctx, "bench", payload); err != nil {
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
// through two, interleaved in rounds within one run so that the machine's
// load falls on all three alike: deliveries per second with the origin
// publishing as fast as it can, and the latency from Publish to the
// leaf's Handler at a steady 20,000/s. Every node shares this process's
// cores. Each metric is the median of the rounds. -benchtime 1x runs it
// once.
func BenchmarkRelayHops(b *testing.B) {
	const subs, size, rounds = 2, 100, 3
	count, rate, paced := 200_000, 20_000.0, 40_000
	if testing.Short() {
		count, paced = 20_000, 5_000
	}
	names := []string{"direct", "hop1", "hop2"}
	for range b.N {
		thr := make([][]float64, len(names))
		p50 := make([][]float64, len(names))
		p99 := make([][]float64, len(names))
		for range rounds {
			for hops := range names {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				c := newChain(b, ctx, hops, subs, count)
				el := c.run(b, ctx, count, size, 0)
				thr[hops] = append(thr[hops], float64(count*subs)/el.Seconds())
				c = newChain(b, ctx, hops, subs, paced)
				c.run(b, ctx, paced, size, rate)
				lat := c.latencies()
				p50[hops] = append(p50[hops], float64(pct(lat, 50).Microseconds()))
				p99[hops] = append(p99[hops], float64(pct(lat, 99).Microseconds()))
				cancel()
			}
		}
		for hops, name := range names {
			b.ReportMetric(median(thr[hops]), name+"-deliveries/s")
			b.ReportMetric(median(p50[hops]), name+"-p50-µs")
			b.ReportMetric(median(p99[hops]), name+"-p99-µs")
		}
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
