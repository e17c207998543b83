package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestSubSetAgainstScan checks subSet against the plain list it replaces,
// through random subscribes and cancels that cross the small/map switch.
func TestSubSetAgainstScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab")
	randBytes := func(max int) []byte {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	for round := 0; round < 50; round++ {
		s := newSubSet()
		var ref [][]byte
		for op := 0; op < 200; op++ {
			p := randBytes(4)
			i := slices.IndexFunc(ref, func(x []byte) bool { return bytes.Equal(x, p) })
			if rng.IntN(3) > 0 {
				if added := s.add(p); added != (i < 0) {
					t.Fatalf("add(%q) = %v with %q", p, added, ref)
				}
				if i < 0 {
					ref = append(ref, p)
				}
			} else {
				if removed := s.remove(p); removed != (i >= 0) {
					t.Fatalf("remove(%q) = %v with %q", p, removed, ref)
				}
				if i >= 0 {
					ref = slices.Delete(ref, i, i+1)
				}
			}
			if s.len() != len(ref) {
				t.Fatalf("len %d, want %d", s.len(), len(ref))
			}
			for k := 0; k < 8; k++ {
				topic := randBytes(6)
				want := slices.ContainsFunc(ref, func(x []byte) bool { return bytes.HasPrefix(topic, x) })
				if got := s.match(topic); got != want {
					t.Fatalf("match(%q) = %v with %q", topic, got, ref)
				}
			}
		}
	}
}

// TestMaxSubscriptions: the connection that subscribes one prefix more
// than MaxSubscriptions is closed and counted; repeating a prefix it has
// does not count.
func TestMaxSubscriptions(t *testing.T) {
	const max = 10
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{MaxSubscriptions: max, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	nc := dialRawSub(t, p.Endpoint(), "p0", 0)
	for i := 1; i < max; i++ {
		subscribeRaw(t, nc, fmt.Sprintf("p%d", i), "p0")
	}
	waitFor(t, 5*time.Second, "the subscriptions", func() bool { return len(events.of(PeerSubscribed)) == max })
	if st := p.Stats(); st.Peers != 1 || st.TooManySubscriptions != 0 {
		t.Fatalf("at the limit: stats %+v", st)
	}
	subscribeRaw(t, nc, "one-more")
	waitFor(t, 5*time.Second, "the disconnection", func() bool { return len(events.of(PeerDisconnected)) == 1 })
	if d := events.of(PeerDisconnected)[0]; !errors.Is(d.Err, ErrTooManySubscriptions) {
		t.Errorf("disconnected with %v, want ErrTooManySubscriptions", d.Err)
	}
	if st := p.Stats(); st.TooManySubscriptions != 1 {
		t.Errorf("stats %+v: want one connection closed for too many subscriptions", st)
	}
}

// rawReader connects a raw subscriber that subscribes to prefixes-1
// prefixes that never match, then to "t", and counts what it receives.
func rawReader(tb testing.TB, ep string, prefixes int, got *atomic.Int64) net.Conn {
	var subs []string
	for i := 1; i < prefixes; i++ {
		subs = append(subs, fmt.Sprintf("nomatch-%d", i))
	}
	subs = append(subs, "t")
	nc := dialRawSub(tb, ep, subs[0], 0)
	subscribeRaw(tb, nc, subs[1:]...)
	go countMessages(nc, func(int) { got.Add(1) })
	return nc
}

// BenchmarkSendPrefixes measures Send to four subscribers that each have
// 1, 10 or 1,000 prefixes, only the last of which ("t") matches: the cost
// of matching a topic against a connection's subscriptions on the hot
// path.
//
//	go test -run '^$' -bench SendPrefixes -benchmem ./internal/wire/
func BenchmarkSendPrefixes(b *testing.B) {
	for _, np := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("prefixes=%d", np), func(b *testing.B) {
			p, err := Listen("tcp://127.0.0.1:0", PubConfig{SlowTimeout: time.Minute, MaxSubscriptions: np})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			var got [4]atomic.Int64
			for i := range got {
				rawReader(b, p.Endpoint(), np, &got[i])
			}
			ctx := context.Background()
			m := &Msg{Frames: [][]byte{[]byte("t"), make([]byte, 16)}}
			waitFor(b, 10*time.Second, "every subscription", func() bool {
				p.Send(ctx, m)
				for i := range got {
					if got[i].Load() == 0 {
						return false
					}
				}
				return true
			})
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				p.Send(ctx, m)
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkSubscribeMany measures one connection subscribing 40,000
// distinct prefixes: the time until the last one takes effect, and the
// bytes the Pub allocated for it. (A copy-on-write list took 31 s of CPU
// and 330 MB for this.)
//
//	go test -run '^$' -bench SubscribeMany -benchtime 1x ./internal/wire/
func BenchmarkSubscribeMany(b *testing.B) {
	const n = 40_000
	for i := 0; i < b.N; i++ {
		p, err := Listen("tcp://127.0.0.1:0", PubConfig{MaxSubscriptions: n, MaxSubscriptionBytes: 64 << 20, SubscriptionBudget: 64 << 20})
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		start := time.Now()
		rawReader(b, p.Endpoint(), n, &got)
		m := &Msg{Frames: [][]byte{[]byte("t"), make([]byte, 16)}}
		waitFor(b, 5*time.Minute, "the last subscription", func() bool {
			p.Send(context.Background(), m)
			return got.Load() > 0
		})
		took := time.Since(start)
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(took.Seconds(), "s")
		b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/(1<<20), "MiB-alloc")
		p.Close()
	}
}

// BenchmarkSubSetMatch measures matching one topic against a connection
// with 1, 10 or 1,000 prefixes, only the last of which matches: subSet
// next to the copy-on-write list it replaced ("scan"), in the same run.
//
//	go test -run '^$' -bench SubSetMatch ./internal/wire/
func BenchmarkSubSetMatch(b *testing.B) {
	topic := []byte("orders.eu.42")
	for _, np := range []int{1, 10, 1000} {
		var list [][]byte
		s := newSubSet()
		for i := 1; i < np; i++ {
			p := []byte(fmt.Sprintf("nomatch-%d", i))
			list = append(list, p)
			s.add(p)
		}
		list = append(list, []byte("orders."))
		s.add([]byte("orders."))
		var scanNs float64
		b.Run(fmt.Sprintf("prefixes=%d/scan", np), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if !slices.ContainsFunc(list, func(p []byte) bool { return bytes.HasPrefix(topic, p) }) {
					b.Fatal("no match")
				}
			}
			scanNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		b.Run(fmt.Sprintf("prefixes=%d/subset", np), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if !s.match(topic) {
					b.Fatal("no match")
				}
			}
			if ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N); ns > 0 && scanNs > 0 {
				b.ReportMetric(scanNs/ns, "speedup")
			}
		})
	}
}
