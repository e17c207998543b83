package wire

import (
	"net"
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

// BenchmarkIdleConnsTLS is BenchmarkIdleConns over tls://: what 1,000
// idle subscriber connections (TLS and ZMTP handshakes done, subscribed,
// nothing published) cost a Pub in heap and goroutine stacks, the test's
// own side of each connection included.
//
//	go test -run '^$' -bench IdleConnsTLS -benchtime 1x -count 3 ./internal/wire/
func BenchmarkIdleConnsTLS(b *testing.B) {
	const n = 1000
	ca := testpki.NewCA(b, "bench CA")
	pubTLS := mustTLS(b, ca.Server(b, "publisher"), ca.Pool())
	subTLS := mustTLS(b, ca.Client(b, "subscriber"), ca.Pool())
	for i := 0; i < b.N; i++ {
		heap0, stack0 := memInUse()
		subscribed := make(chan struct{}, n)
		p, err := Listen("tls://127.0.0.1:0", PubConfig{TLS: pubTLS, MaxConnsPerIP: n, OnEvent: func(ev PeerEvent) {
			if ev.Type == PeerSubscribed {
				subscribed <- struct{}{}
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		conns := make([]net.Conn, 0, n)
		for j := 0; j < n; j++ {
			nc, err := dialTLSSub(b, p.Endpoint(), subTLS, "t")
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, nc)
		}
		for j := 0; j < n; j++ {
			<-subscribed
		}
		heap1, stack1 := memInUse()
		b.ReportMetric(float64(heap1-heap0)/n, "heap-B/conn")
		b.ReportMetric(float64(stack1-stack0)/n, "stack-B/conn")
		p.Close()
		for _, nc := range conns {
			nc.Close()
		}
	}
}
