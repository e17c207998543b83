package wire

import (
	"testing"

	"github.com/syncmq/syncmq/internal/testpki"
)

// BenchmarkPubSubTLS measures one publisher to one subscriber over tcp://
// and over tls:// (TLS 1.3, mutual authentication, ECDSA P-256
// certificates) in the same run. ratio is tls's msgs/s over tcp's for the
// same payload size, reported on the tls sub-benchmark.
//
//	go test -run '^$' -bench PubSubTLS -benchmem ./internal/wire/
func BenchmarkPubSubTLS(b *testing.B) {
	ca := testpki.NewCA(b, "bench CA")
	pubTLS := mustTLS(b, ca.Server(b, "publisher"), ca.Pool())
	subTLS := mustTLS(b, ca.Client(b, "subscriber"), ca.Pool())
	for _, size := range []struct {
		name string
		n    int
	}{{"7B", 7}, {"1KiB", 1024}} {
		var tcpRate float64
		b.Run(size.name+"/tcp", func(b *testing.B) { tcpRate = benchWireOver(b, size.n, "tcp://127.0.0.1:0", nil, nil) })
		b.Run(size.name+"/tls", func(b *testing.B) {
			rate := benchWireOver(b, size.n, "tls://127.0.0.1:0", pubTLS, subTLS)
			if tcpRate > 0 {
				b.ReportMetric(rate/tcpRate, "ratio")
			}
		})
	}
}
