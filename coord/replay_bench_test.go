package coord

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkReplay measures the recovery channel: each iteration a new
// subscriber joins late with StartAtEarliest and repairs a 100,000-message
// gap from the publisher's retained history, then catches up. Compare
// replayed-msgs/s with BenchmarkEndToEnd/subs=1 of the same size, the
// live rate, in the same run.
func BenchmarkReplay(b *testing.B) {
	for _, tc := range []struct {
		store     string
		gap, size int
	}{
		{"memory", 100_000, 7}, {"memory", 100_000, 1024},
		{"journal", 100_000, 7}, {"journal", 100_000, 1024}, {"journal", 1_000_000, 7},
	} {
		gap, size := tc.gap, tc.size
		b.Run(fmt.Sprintf("store=%s/gap=%d/size=%d", tc.store, gap, size), func(b *testing.B) {
			cfg := loopbackConfig()
			cfg.History.MaxMessages = gap
			cfg.History.MaxBytes = 256 << 20
			if tc.store == "journal" {
				cfg.DataDir = b.TempDir()
			}
			// The benchmark measures the FETCH replay path, not the
			// bandwidth limit, nor the catch-up on the data connection a
			// late joiner gets by default (BenchmarkLateJoinerCatchUp).
			cfg.SlowPolicy = SlowCut
			cfg.RecoveryLimit.RequestRate, cfg.RecoveryLimit.RequestBurst = 1e6, 1e6
			cfg.RecoveryLimit.HostBytesRate, cfg.RecoveryLimit.HostBytesBurst = 1<<40, 1<<40
			cfg.RecoveryLimit.GlobalBytesRate, cfg.RecoveryLimit.GlobalBytesBurst = 1<<40, 1<<40
			pub, err := NewPublisher(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			ctx := context.Background()
			payload := make([]byte, size)
			for i := 0; i < gap; i++ {
				if _, err := pub.Publish(ctx, "history", payload); err != nil {
					b.Fatal(err)
				}
			}
			for pub.Stats().Published < uint64(gap) {
				time.Sleep(time.Millisecond)
			}
			b.SetBytes(int64(gap * size))
			b.ReportAllocs()
			b.ResetTimer()
			var allocs uint64 // while records were replayed, both ends
			for i := 0; i < b.N; i++ {
				caught := make(chan struct{})
				var ms runtime.MemStats
				var first uint64
				sub, err := NewSubscriber(SubscriberConfig{
					Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: fmt.Sprint("replayer-", i),
					StartAt: StartAtEarliest,
					Handler: func(ev Event) {
						if ev.Type == EventMessage && ev.Seq == 1 {
							runtime.ReadMemStats(&ms)
							first = ms.Mallocs
						}
						if ev.Type == EventCaughtUp && ev.Seq == uint64(gap) {
							runtime.ReadMemStats(&ms)
							allocs += ms.Mallocs - first
							close(caught)
						}
						if ev.Type == EventLoss {
							b.Errorf("loss %d..%d (%s)", ev.From, ev.To, ev.Cause)
						}
					},
				})
				if err != nil {
					b.Fatal(err)
				}
				select {
				case <-caught:
				case <-time.After(time.Minute):
					b.Fatal("replay did not finish")
				}
				sub.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(gap*b.N)/b.Elapsed().Seconds(), "replayed-msgs/s")
			// From the first record replayed to the last, in publisher and
			// subscriber together: what a replay costs per record once the
			// subscriber is set up.
			b.ReportMetric(float64(allocs)/float64(gap*b.N), "allocs/record")
		})
	}
}
