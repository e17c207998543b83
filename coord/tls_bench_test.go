package coord

import (
	"context"
	"fmt"
	"testing"

	"github.com/syncmq/syncmq/internal/testpki"
)

// BenchmarkEndToEndTLS is BenchmarkEndToEnd for 1 KiB payloads over
// tcp:// and over tls:// (TLS 1.3, mutual authentication, ECDSA P-256
// certificates, every subscriber its own), in the same run. ratio is
// tls's deliveries/s over tcp's, reported on the tls sub-benchmark.
//
//	go test -run '^$' -bench EndToEndTLS -benchtime 200000x -benchmem ./coord/
func BenchmarkEndToEndTLS(b *testing.B) {
	const size = 1024
	ca := testpki.NewCA(b, "bench CA")
	for _, subs := range benchSubs {
		var tcpRate float64
		for _, scheme := range []string{"tcp", "tls"} {
			b.Run(fmt.Sprintf("subs=%d/size=%d/%s", subs, size, scheme), func(b *testing.B) {
				c := newTLSBenchCluster(b, subs, ca, scheme == "tls")
				defer c.close()
				payload := make([]byte, size)
				ctx := context.Background()
				b.ReportAllocs()
				b.SetBytes(int64(size * subs))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := c.pub.Publish(ctx, "update", stampedPayload(payload)); err != nil {
						b.Fatal(err)
					}
				}
				drops := c.waitAll(int64(b.N))
				b.StopTimer()
				rate := float64(b.N*subs) / b.Elapsed().Seconds()
				b.ReportMetric(rate, "deliveries/s")
				b.ReportMetric(float64(drops), "drops")
				if scheme == "tcp" {
					tcpRate = rate
				} else if tcpRate > 0 {
					b.ReportMetric(rate/tcpRate, "ratio")
				}
				c.percentiles(b)
			})
		}
	}
}

// newTLSBenchCluster is newBenchCluster on tcp:// or, with secure, on
// tls:// with certificates of ca.
func newTLSBenchCluster(tb testing.TB, n int, ca *testpki.CA, secure bool) *benchCluster {
	tb.Helper()
	if !secure {
		return startBenchCluster(tb, n, loopbackConfig(), nil)
	}
	return startBenchCluster(tb, n, tlsConfig(tb, ca), func(i int) *TLS {
		return testTLS(tb, ca.Client(tb, fmt.Sprint("bench-", i)), ca)
	})
}
