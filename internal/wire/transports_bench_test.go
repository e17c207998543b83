package wire

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWireTransports measures the transport alone, in one run: a
// Pub and 1 or 4 borrowing Subs (as coord's subscriber reads) over
// inproc://, ipc:// and tcp:// loopback, 64 B and 1 KiB messages.
// deliveries/s counts messages received by all Subs per second. coord's
// BenchmarkTransports measures the same with the protocol on top.
//
//	go test -run '^$' -bench WireTransports -count 3 ./internal/wire/
func BenchmarkWireTransports(b *testing.B) {
	for _, subs := range []int{1, 4} {
		for _, size := range []int{64, 1024} {
			for _, transport := range []string{"inproc", "ipc", "tcp"} {
				b.Run(fmt.Sprintf("subs=%d/size=%d/%s", subs, size, transport), func(b *testing.B) {
					var ep string
					switch transport {
					case "inproc":
						ep = fmt.Sprintf("inproc://bench-%d", time.Now().UnixNano())
					case "ipc":
						ep = "ipc://" + filepath.Join(b.TempDir(), "b.sock")
					default:
						ep = "tcp://127.0.0.1:0"
					}
					benchTransport(b, ep, subs, size)
				})
			}
		}
	}
}

func benchTransport(b *testing.B, ep string, n, size int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, err := Listen(ep, PubConfig{SlowTimeout: benchBox})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	var received atomic.Int64
	want := int64(b.N * n)
	recvDone := make(chan struct{})
	var finished atomic.Int32
	for range n {
		sub := NewSub(SubConfig{Borrow: true}, "t")
		defer sub.Close()
		if err := sub.Connect(pub.Endpoint()); err != nil {
			b.Fatal(err)
		}
		go func() {
			defer func() {
				if finished.Add(1) == int32(n) {
					close(recvDone)
				}
			}()
			var mine int64
			for mine < int64(b.N) {
				d, err := sub.Recv(ctx)
				if err != nil {
					return
				}
				if d.Kind == Messages {
					k := int64(d.Msgs.Len())
					mine += k
					received.Add(k)
					d.Release()
				}
			}
		}()
	}
	waitFor(b, 5*time.Second, "subscriptions", func() bool {
		s := *pub.snap.Load()
		if len(s) != n {
			return false
		}
		for _, pr := range s {
			if !pr.subs.match([]byte("t")) {
				return false
			}
		}
		return true
	})
	// A Msg per Send, as coord sends batches: a Msg the consumers still
	// hold when it is sent again would hide its bytes from the Pub's
	// accounting (Msg), which paces Send to subscribers that lag.
	frames := [][]byte{[]byte("t"), make([]byte, size)}
	b.SetBytes(int64(size * n))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := pub.Send(ctx, &Msg{Frames: frames}); err != nil {
			b.Fatal(err)
		}
	}
	box := time.NewTimer(benchBox)
	defer box.Stop()
	select {
	case <-recvDone:
	case <-box.C:
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := received.Load(); got < want {
		b.Logf("received %d of %d within %v", got, want, benchBox)
	}
	b.ReportMetric(float64(received.Load())/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(pub.Stats().SlowConsumers), "slow")
}
