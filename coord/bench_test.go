package coord

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Benchmarks compare the coord stream with raw go-zeromq PUB/SUB in the
// same run. They measure; they assert nothing about speed.
//
//	go test -run '^$' -bench . -benchtime 200000x ./coord/

var benchSizes = []int{7, 64, 1024}
var benchSubs = []int{1, 4, 10}

// BenchmarkPublish is the publisher's hot path alone: Publish, batching
// and the sender, with no subscriber connected.
func BenchmarkPublish(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			cfg := loopbackConfig()
			pub, err := NewPublisher(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Shutdown(context.Background())
			payload := make([]byte, size)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := pub.Publish(ctx, "update", payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// benchCluster is a publisher with n subscribers that count deliveries
// and sample latency from the timestamp each payload starts with.
type benchCluster struct {
	pub      *Publisher
	subs     []*Subscriber
	received []atomic.Int64
	mu       sync.Mutex
	lat      []time.Duration
	sampleN  atomic.Int64
	every    int64 // sample one delivery in every
}

func newBenchCluster(tb testing.TB, n int, mod func(*PublisherConfig)) *benchCluster {
	tb.Helper()
	cfg := loopbackConfig()
	if mod != nil {
		mod(&cfg)
	}
	return startBenchCluster(tb, n, cfg, nil)
}

// startBenchCluster starts a publisher on cfg expecting n subscribers and
// the n subscribers, subscriber i with subTLS(i) if subTLS is set, and
// waits for the quorum.
func startBenchCluster(tb testing.TB, n int, cfg PublisherConfig, subTLS func(i int) *TLS) *benchCluster {
	tb.Helper()
	cfg.Expect = n
	pub, err := NewPublisher(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	c := &benchCluster{pub: pub, received: make([]atomic.Int64, n), every: 16}
	for i := 0; i < n; i++ {
		var t *TLS
		if subTLS != nil {
			t = subTLS(i)
		}
		s, err := NewSubscriber(SubscriberConfig{
			Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: fmt.Sprint("bench-", i), TLS: t,
			Handler: func(ev Event) {
				if ev.Type != EventMessage {
					return
				}
				c.received[i].Add(1)
				if len(ev.Payload) >= 8 && c.sampleN.Add(1)%c.every == 0 {
					sent := int64(binary.BigEndian.Uint64(ev.Payload))
					d := time.Duration(time.Now().UnixNano() - sent)
					c.mu.Lock()
					c.lat = append(c.lat, d)
					c.mu.Unlock()
				}
			},
		})
		if err != nil {
			tb.Fatal(err)
		}
		c.subs = append(c.subs, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.WaitQuorum(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

func (c *benchCluster) close() {
	c.pub.Shutdown(context.Background())
	for _, s := range c.subs {
		s.Close()
	}
}

// waitAll waits until every subscriber received want messages or the
// stream went quiet for 5 s; it returns how many deliveries are missing.
func (c *benchCluster) waitAll(want int64) int64 {
	var last int64 = -1
	quiet := time.Now()
	for {
		var total, missing int64
		for i := range c.received {
			got := c.received[i].Load()
			total += got
			missing += max(want-got, 0)
		}
		if missing == 0 {
			return 0
		}
		if total != last {
			last, quiet = total, time.Now()
		} else if time.Since(quiet) > 5*time.Second {
			return missing
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (c *benchCluster) percentiles(b *testing.B) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lat) == 0 {
		return
	}
	slices.Sort(c.lat)
	at := func(q float64) float64 {
		return float64(c.lat[min(int(q*float64(len(c.lat))), len(c.lat)-1)].Microseconds())
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(0.999), "p999-µs")
}

func stampedPayload(buf []byte) []byte {
	binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
	return buf
}

// BenchmarkEndToEnd: in-process publisher and subscribers over loopback
// TCP, as fast as the publisher can go.
func BenchmarkEndToEnd(b *testing.B) {
	for _, subs := range benchSubs {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("subs=%d/size=%d", subs, size), func(b *testing.B) {
				c := newBenchCluster(b, subs, nil)
				defer c.close()
				payload := make([]byte, max(size, 8))[:size]
				ctx := context.Background()
				b.ReportAllocs()
				b.SetBytes(int64(size * subs))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p := payload
					if size >= 8 {
						p = stampedPayload(payload)
					}
					if _, err := c.pub.Publish(ctx, "update", p); err != nil {
						b.Fatal(err)
					}
				}
				drops := c.waitAll(int64(b.N))
				b.StopTimer()
				b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliveries/s")
				b.ReportMetric(float64(drops), "drops")
				c.percentiles(b)
			})
		}
	}
}

// BenchmarkTopics: round-robin over many topics, 1 KiB payloads, two
// subscribers taking every topic, as fast as the publisher can go. Each
// subscriber accepts MULTI, so batches mix topics.
func BenchmarkTopics(b *testing.B) {
	for _, topics := range []int{10, 1_000, 10_000} {
		b.Run(fmt.Sprintf("topics=%d/subs=2/size=1024", topics), func(b *testing.B) {
			benchPublish(b, 2, 1024, topicNames(topics))
		})
	}
}

// BenchmarkLarge: 16 KiB payloads on one topic.
func BenchmarkLarge(b *testing.B) {
	for _, subs := range []int{1, 4} {
		b.Run(fmt.Sprintf("subs=%d/size=16384", subs), func(b *testing.B) {
			benchPublish(b, subs, 16<<10, topicNames(1))
		})
	}
}

func topicNames(n int) []string {
	if n == 1 {
		return []string{"update"}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("t%d", i)
	}
	return names
}

// benchPublish publishes b.N records of size bytes round-robin over
// topics to subs subscribers and waits until each has all of them.
func benchPublish(b *testing.B, subs, size int, topics []string) {
	c := newBenchCluster(b, subs, nil)
	defer c.close()
	payload := make([]byte, max(size, 8))[:size]
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(size * subs))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.pub.Publish(ctx, topics[i%len(topics)], stampedPayload(payload)); err != nil {
			b.Fatal(err)
		}
	}
	drops := c.waitAll(int64(b.N))
	b.StopTimer()
	st := c.pub.Stats()
	b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/float64(max(st.Batches, 1)), "records/batch")
	b.ReportMetric(float64(drops), "drops")
}

// BenchmarkRawZmq4 is the baseline: go-zeromq PUB to SUB sockets with
// nothing on top (default HWM, no envelope, no ordering checks).
func BenchmarkRawZmq4(b *testing.B) {
	for _, subs := range benchSubs {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("subs=%d/size=%d", subs, size), func(b *testing.B) {
				benchRaw(b, subs, size)
			})
		}
	}
}

func benchRaw(b *testing.B, subs, size int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := zmq4.NewPub(ctx)
	defer pub.Close()
	if err := pub.Listen("tcp://127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	ep := "tcp://" + pub.Addr().String()
	received := make([]atomic.Int64, subs)
	warm := make([]atomic.Bool, subs)
	var wg sync.WaitGroup
	socks := make([]zmq4.Socket, subs)
	for i := range socks {
		s := zmq4.NewSub(ctx)
		_ = s.SetOption(zmq4.OptionSubscribe, "")
		if err := s.Dial(ep); err != nil {
			b.Fatal(err)
		}
		socks[i] = s
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				m, err := s.Recv()
				if err != nil {
					return
				}
				if string(m.Frames[0]) == "warm" {
					warm[i].Store(true)
					continue
				}
				received[i].Add(1)
			}
		}(i)
	}
	defer func() {
		cancel()
		for _, s := range socks {
			s.Close()
		}
		wg.Wait()
	}()
	// The slow-joiner problem: probe until every SUB is receiving.
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := true
		for i := range warm {
			all = all && warm[i].Load()
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("raw SUB sockets never started receiving")
		}
		_ = pub.Send(zmq4.NewMsgFrom([]byte("warm"), nil))
		time.Sleep(time.Millisecond)
	}
	payload := make([]byte, size)
	b.ReportAllocs()
	b.SetBytes(int64(size * subs))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fresh slice per message: zmq4 keeps the caller's slice.
		if err := pub.Send(zmq4.NewMsgFrom([]byte("update"), append([]byte(nil), payload...))); err != nil {
			b.Fatal(err)
		}
	}
	var missing int64
	var last int64 = -1
	quiet := time.Now()
	for {
		var total int64
		missing = 0
		for i := range received {
			got := received[i].Load()
			total += got
			missing += max(int64(b.N)-got, 0)
		}
		if missing == 0 {
			break
		}
		if total != last {
			last, quiet = total, time.Now()
		} else if time.Since(quiet) > 5*time.Second {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(missing), "drops")
}

// BenchmarkLatency measures publish-to-delivery latency with 4 subscribers
// at a paced rate, batched (default) and unbatched (MaxBatchRecords 1).
func BenchmarkLatency(b *testing.B) {
	for _, rate := range []int{1_000, 100_000} {
		for _, mode := range []string{"batched", "unbatched"} {
			b.Run(fmt.Sprintf("rate=%d/%s", rate, mode), func(b *testing.B) {
				c := newBenchCluster(b, 4, func(cfg *PublisherConfig) {
					if mode == "unbatched" {
						cfg.MaxBatchRecords = 1
					}
				})
				defer c.close()
				c.every = 1
				payload := make([]byte, 16)
				ctx := context.Background()
				interval := time.Second / time.Duration(rate)
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					// Pace by schedule, not by sleeping a fixed amount, so the
					// rate holds even when one send is slow.
					for due := start.Add(time.Duration(i) * interval); time.Now().Before(due); {
						if d := time.Until(due); d > 200*time.Microsecond {
							time.Sleep(d - 100*time.Microsecond)
						}
					}
					if _, err := c.pub.Publish(ctx, "update", stampedPayload(payload)); err != nil {
						b.Fatal(err)
					}
				}
				drops := c.waitAll(int64(b.N))
				b.StopTimer()
				b.ReportMetric(float64(drops), "drops")
				c.percentiles(b)
			})
		}
	}
}
