package coord

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkTransports compares inproc://, ipc:// and tcp:// (loopback)
// in one run: a publisher and 1 or 4 subscribers in this process, as
// fast as the publisher can go, at 64 B and 1 KiB. docs/performance.md
// has the numbers and the command.
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
					for i := 0; i < b.N; i++ {
						if _, err := c.pub.Publish(ctx, "update", payload); err != nil {
							b.Fatal(err)
						}
					}
					drops := c.waitAll(int64(b.N))
					b.StopTimer()
					b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliveries/s")
					b.ReportMetric(float64(drops), "drops")
				})
			}
		}
	}
}
