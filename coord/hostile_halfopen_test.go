package coord

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/testpki"
	"github.com/syncmq/syncmq/internal/wire"
)

// Half-open connections: peers that connect and never finish their
// handshake (silence on tcp://, a partial TLS ClientHello on tls://),
// renewed fast, from one address, to take the handshake slots every
// address shares.

// partialClientHello is the start of a TLS record carrying a
// ClientHello: the header announces 512 bytes, 6 of which follow. A
// server reading it waits for the rest.
var partialClientHello = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}

// halfOpenFlood holds up to n connections to each of addrs from source
// address src that never complete a handshake, opening a new one on each
// every 1/rate s and closing its oldest beyond n, until ctx ends.
type halfOpenFlood struct {
	opened atomic.Int64
	failed atomic.Int64
}

func startHalfOpen(ctx context.Context, wg *sync.WaitGroup, addrs []string, src string, n, rate int, tls bool) *halfOpenFlood {
	f := &halfOpenFlood{}
	for _, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					f.failed.Add(1)
					continue
				}
				if tls {
					_, _ = c.Write(partialClientHello)
				}
				f.opened.Add(1)
				held = append(held, c)
				if len(held) > n {
					held[0].Close()
					held = slices.Delete(held, 0, 1)
				}
			}
		}()
	}
	return f
}

// halfOpenTarget is a publisher on tcp:// or tls:// and how a real
// subscriber joins it.
type halfOpenTarget struct {
	pub    *Publisher
	subTLS *TLS // nil on tcp://
}

func newHalfOpenTarget(tb testing.TB, secure bool) *halfOpenTarget {
	tb.Helper()
	if !secure {
		return &halfOpenTarget{pub: hostilePublisher(tb, nil)}
	}
	ca := testpki.NewCA(tb, "half-open CA")
	cfg := tlsConfig(tb, ca)
	cfg.HeartbeatInterval = 100 * time.Millisecond
	pub, err := NewPublisher(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pub.Close() })
	return &halfOpenTarget{pub: pub, subTLS: testTLS(tb, ca.Client(tb, "real"), ca)}
}

// ports returns the host:port of each of the publisher's endpoints.
func (h *halfOpenTarget) ports(tb testing.TB) []string {
	var out []string
	for _, ep := range []string{h.pub.Endpoint(), h.pub.SyncEndpoint(), h.pub.RecoveryEndpoint()} {
		addr, err := wire.SplitEndpoint(ep)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, addr)
	}
	return out
}

// join starts a subscriber (from 127.0.0.1), waits for its handshake and
// returns how long that took; the subscriber is closed.
func (h *halfOpenTarget) join(tb testing.TB) time.Duration {
	tb.Helper()
	start := time.Now()
	sub, err := NewSubscriber(SubscriberConfig{Connect: h.pub.Endpoint(), Sync: h.pub.SyncEndpoint(), ID: "real", TLS: h.subTLS,
		Handler: func(Event) {}})
	if err != nil {
		tb.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// TestHalfOpenFloodDoesNotKeepSubscriberOut: on tcp:// and tls://, 300
// half-open connections on each of the publisher's ports, renewed at
// 300/s from one address. A subscriber from another address joins,
// three times; on the data port the flood only evicted its own
// handshakes (counted), and no port refused a connection.
func TestHalfOpenFloodDoesNotKeepSubscriberOut(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[secure], func(t *testing.T) {
			h := newHalfOpenTarget(t, secure)
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer stop()
			flood := startHalfOpen(ctx, &wg, h.ports(t), "127.0.0.2", 300, 300, secure)
			waitFor(t, func() bool { return flood.opened.Load() >= 3*300 }, "the flood to reach 300 connections per port")
			var took []time.Duration
			for i := 0; i < 3; i++ {
				took = append(took, h.join(t).Round(time.Millisecond))
			}
			st := h.pub.Stats()
			t.Logf("joins took %v beside %d half-open connections opened; data port: %d handshakes evicted, %d pending; sync evicted %d",
				took, flood.opened.Load(), st.Wire.EvictedPending, st.Wire.Pending, st.SyncWire.Evicted)
			if st.Wire.EvictedPending == 0 {
				t.Error("the data port evicted no handshake: the flood did not press")
			}
			if st.Wire.Refused != 0 || st.SyncWire.Refused != 0 || st.RecoveryWire.Refused != 0 {
				t.Errorf("refusals: data %+v, sync %+v, recovery %+v", st.Wire, st.SyncWire, st.RecoveryWire)
			}
		})
	}
}

// BenchmarkJoinUnderHalfOpen reports a subscriber's join time (from
// NewSubscriber to its first ACK), without and with 1,000 half-open
// connections on the publisher's data port renewed at 1,000/s from
// another address, alternately, on tcp:// and tls://. ratio is the
// median attacked join over the median quiet one. b.N joins per phase.
// The flood runs in the benchmark's process, on the same two cores.
//
//	go test -run '^$' -bench JoinUnderHalfOpen -benchtime 20x ./coord/
func BenchmarkJoinUnderHalfOpen(b *testing.B) {
	for _, secure := range []bool{false, true} {
		b.Run(map[bool]string{false: "tcp", true: "tls"}[secure], func(b *testing.B) {
			h := newHalfOpenTarget(b, secure)
			var quiet, attacked []time.Duration
			var opened int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				quiet = append(quiet, h.join(b))
				ctx, stop := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				flood := startHalfOpen(ctx, &wg, h.ports(b)[:1], "127.0.0.2", 1000, 1000, secure)
				for deadline := time.Now().Add(time.Minute); flood.opened.Load() < 1000; {
					if time.Now().After(deadline) {
						b.Fatalf("the flood opened %d of 1000 connections in a minute", flood.opened.Load())
					}
					time.Sleep(10 * time.Millisecond)
				}
				attacked = append(attacked, h.join(b))
				stop()
				wg.Wait()
				opened += flood.opened.Load()
			}
			b.StopTimer()
			st := h.pub.Stats()
			q, a := percentile(quiet, 50), percentile(attacked, 50)
			b.ReportMetric(float64(q.Microseconds())/1000, "quiet-join-ms")
			b.ReportMetric(float64(a.Microseconds())/1000, "flood-join-ms")
			b.ReportMetric(float64(percentile(attacked, 100).Microseconds())/1000, "flood-max-join-ms")
			b.ReportMetric(float64(a)/float64(max(q, 1)), "ratio")
			b.ReportMetric(float64(opened)/float64(b.N), "half-open/join")
			b.ReportMetric(float64(st.Wire.EvictedPending)/float64(b.N), "evicted/join")
			if st.Wire.Refused+st.SyncWire.Refused+st.RecoveryWire.Refused != 0 {
				b.Errorf("refusals: %s", strings.TrimSpace(fmt.Sprintf("%+v %+v %+v", st.Wire, st.SyncWire, st.RecoveryWire)))
			}
		})
	}
}
