package coord

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTransports compares inproc://, ipc:// and tcp:// (loopback)
// in one run: a publisher and 1 or 4 subscribers in this process, as
// fast as the publisher can go, at 64 B and 1 KiB. Besides deliveries/s
// it reports the process's CPU time (user and system: the kernel's share
// of a socket is in it) per delivery, which neighbours on a shared
// machine disturb less than the wall time. docs/performance.md has the
// numbers and the command.
//
//	go test -run '^$' -bench Transports -benchtime 400000x -count 3 ./coord/
func BenchmarkTransports(b *testing.B) {
	for _, subs := range []int{1, 4} {
		for _, size := range []int{64, 1024} {
			for _, transport := range []string{"inproc", "ipc", "tcp"} {
				b.Run(fmt.Sprintf("subs=%d/size=%d/%s", subs, size, transport), func(b *testing.B) {
					cfg := loopbackConfig()
					cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = localEndpoints(b, transport)
					c := startBenchCluster(b, subs, cfg, nil)
					defer c.close()
					payload := make([]byte, size)
					ctx := context.Background()
					b.ReportAllocs()
					b.SetBytes(int64(size * subs))
					b.ResetTimer()
					cpu := processCPU()
					for i := 0; i < b.N; i++ {
						if _, err := c.pub.Publish(ctx, "update", payload); err != nil {
							b.Fatal(err)
						}
					}
					drops := c.waitAll(int64(b.N))
					b.StopTimer()
					b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*subs), "cpu-ns/delivery")
					b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliveries/s")
					b.ReportMetric(float64(drops), "drops")
					// What the transport's per-message cost is shared by.
					if st := c.pub.Stats(); st.Batches > 0 {
						b.ReportMetric(float64(st.Published)/float64(st.Batches), "records/batch")
					}
				})
			}
		}
	}
}

// processCPU returns the CPU time the process used so far, user and
// system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
