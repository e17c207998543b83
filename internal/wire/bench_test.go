package wire

import (
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// benchBox bounds how long a benchmark waits for its messages: zmq4's SUB
// may not get them all, so each run counts what arrived in the box
// rather than waiting for b.N.
const benchBox = 20 * time.Second

// BenchmarkPubSub measures one publisher to one subscriber over TCP
// loopback, for wire (Pub→Sub) and bare zmq4 (PUB→SUB) in the same run.
// msgs/s counts messages received per second of the timed region (send
// and receive overlap); ratio is wire's msgs/s over zmq4's for the same
// payload size, reported on the wire sub-benchmark.
//
//	go test -run '^$' -bench PubSub -benchmem ./internal/wire/
func BenchmarkPubSub(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"7B", 7}, {"1KiB", 1024}} {
		var zmqRate float64
		b.Run(size.name+"/zmq4", func(b *testing.B) { zmqRate = benchZmq4(b, size.n) })
		b.Run(size.name+"/wire", func(b *testing.B) {
			rate := benchWire(b, size.n)
			if zmqRate > 0 {
				b.ReportMetric(rate/zmqRate, "ratio")
			}
		})
	}
}

// timedRun sends b.N messages with send while recv counts them, and
// reports throughput. It returns messages received per second.
func timedRun(b *testing.B, size int, send func() error, received *atomic.Int64, recvDone <-chan struct{}) float64 {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := send(); err != nil {
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
	reportCPU(b, cpu0)
	got := received.Load()
	if got < int64(b.N) {
		b.Logf("received %d of %d within %v", got, b.N, benchBox)
	}
	rate := float64(got) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	return rate
}

func benchWire(b *testing.B, size int) float64 {
	return benchWireOver(b, size, "tcp://127.0.0.1:0", nil, nil)
}

// benchWireOver is benchWire on endpoint, with TLS configurations for the
// Pub and the Sub on tls://.
func benchWireOver(b *testing.B, size int, endpoint string, pubTLS, subTLS *TLS) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, err := Listen(endpoint, PubConfig{SlowTimeout: benchBox, TLS: pubTLS})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub := NewSub(SubConfig{TLS: subTLS}, "t")
	defer sub.Close()
	if err := sub.Connect(pub.Endpoint()); err != nil {
		b.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Connected {
		b.Fatalf("got %+v, %v", d, err)
	}
	waitFor(b, 5*time.Second, "subscription", func() bool {
		s := *pub.snap.Load()
		return len(s) == 1 && s[0].subs.match([]byte("t"))
	})
	var received atomic.Int64
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for received.Load() < int64(b.N) {
			d, err := sub.Recv(ctx)
			if err != nil {
				return
			}
			if d.Kind == Message {
				received.Add(1)
			}
		}
	}()
	// One Msg for every Send: its frames never change and it has no
	// OnFree, so sharing it is within the Msg contract.
	m := &Msg{Frames: [][]byte{[]byte("t"), make([]byte, size)}}
	return timedRun(b, size, func() error { return pub.Send(ctx, m) }, &received, recvDone)
}

func benchZmq4(b *testing.B, size int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := zmq4.NewPub(ctx)
	defer pub.Close()
	if err := pub.Listen("tcp://127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	sub := zmq4.NewSub(ctx)
	defer sub.Close()
	if err := sub.SetOption(zmq4.OptionSubscribe, "t"); err != nil {
		b.Fatal(err)
	}
	if err := sub.Dial("tcp://" + pub.Addr().String()); err != nil {
		b.Fatal(err)
	}
	waitFor(b, 5*time.Second, "subscription", func() bool { return len(pub.(zmq4.Topics).Topics()) == 1 })
	msg := zmq4.NewMsgFrom([]byte("t"), make([]byte, size))
	var received atomic.Int64
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for received.Load() < int64(b.N) {
			if _, err := sub.Recv(); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	rate := timedRun(b, size, func() error { return pub.Send(msg) }, &received, recvDone)
	sub.Close() // ends a Recv still waiting after the box
	<-recvDone
	return rate
}

// BenchmarkIdleConns measures what 1,000 idle subscriber connections
// (handshaked and subscribed, nothing published) cost a Pub: heap and
// goroutine stack per connection, after a collection. The test's own
// side of each connection (a net.Conn) is included.
//
//	go test -run '^$' -bench IdleConns -benchtime 1x -count 3 ./internal/wire/
func BenchmarkIdleConns(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		heap0, stack0 := memInUse()
		subscribed := make(chan struct{}, n)
		p, err := Listen("tcp://127.0.0.1:0", PubConfig{MaxConnsPerIP: n, OnEvent: func(ev PeerEvent) {
			if ev.Type == PeerSubscribed {
				subscribed <- struct{}{}
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		conns := make([]net.Conn, 0, n)
		for j := 0; j < n; j++ {
			conns = append(conns, dialRawSub(b, p.Endpoint(), "t", 0))
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

// memInUse returns the heap and stack memory in use after a collection.
func memInUse() (heap, stack uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// processCPU returns the CPU time the process used so far, user and
// system. Benchmarks report it per operation next to the wall time: on a
// shared machine the wall time says as much about the neighbours as about
// the code.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
