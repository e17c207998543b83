package coord

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRawTCP is the wire's bound for one subscriber, to read beside
// BenchmarkEndToEnd/subs=1 from the same run:
//
//	go test -run '^$' -bench '(EndToEnd|RawTCP)$/^subs=1$' -benchtime 200000x ./coord/
//
// A writer sends length-prefixed records (a 4-byte big-endian length, then
// the payload) over one loopback TCP connection through a bufio.Writer,
// and one reader parses them with a bufio.Reader. Both buffers are 64 KiB,
// the size of a full syncmq batch (PublisherConfig.MaxBatchBytes), so the
// baseline makes syscalls as large as ours; bufio's default 4 KiB halves
// it on loopback. There is no envelope, sequence, batching, handshake or
// repair: whatever syncmq adds is the distance between the two.
//
// "stamped" runs the loop BenchmarkEndToEnd runs around the transport:
// the writer stamps the send time into each payload of at least 8 bytes
// (a time.Now per record), the reader counts each record with an atomic
// add, and the benchmark polls the count until every record arrived.
// "bare" leaves out the stamp, the wire alone; at 64 B the clock is a
// large share of a record's cost.
func BenchmarkRawTCP(b *testing.B) {
	for _, size := range benchSizes {
		for _, stamp := range []bool{true, false} {
			name := fmt.Sprintf("subs=1/size=%d/bare", size)
			if stamp {
				name = fmt.Sprintf("subs=1/size=%d/stamped", size)
			}
			b.Run(name, func(b *testing.B) { benchRawTCP(b, size, stamp) })
		}
	}
}

// rawTCPBuffer is the baseline's bufio buffer size at both ends.
const rawTCPBuffer = 64 << 10

func benchRawTCP(b *testing.B, size int, stamp bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()
	wconn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer wconn.Close()
	var rconn net.Conn
	select {
	case rconn = <-accepted:
	case err := <-acceptErr:
		b.Fatal(err)
	}
	defer rconn.Close()

	var received atomic.Int64
	readErr := make(chan error, 1)
	go func() { readErr <- readRecords(rconn, size, &received) }()

	w := bufio.NewWriterSize(wconn, rawTCPBuffer)
	payload := make([]byte, max(size, 8))[:size]
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(size))
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := payload
		if stamp && size >= 8 {
			p = stampedPayload(payload)
		}
		if _, err := w.Write(hdr[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(p); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	missing := waitCount(&received, int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(missing), "drops")
	_ = wconn.Close() // the reader sees EOF and returns
	if err := <-readErr; err != nil {
		b.Fatal(err)
	}
}

// readRecords parses length-prefixed records from c until EOF, counting
// each in received. A record longer than size is an error: the writer
// sends only records of size bytes.
func readRecords(c net.Conn, size int, received *atomic.Int64) error {
	r := bufio.NewReaderSize(c, rawTCPBuffer)
	buf := make([]byte, size)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > uint32(size) {
			return fmt.Errorf("record of %d bytes, want at most %d", n, size)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return err
		}
		received.Add(1)
	}
}

// waitCount waits until n reaches want or has not moved for 5 s, as
// benchCluster.waitAll does, and returns how many are missing.
func waitCount(n *atomic.Int64, want int64) int64 {
	last := int64(-1)
	quiet := time.Now()
	for {
		got := n.Load()
		if got >= want {
			return 0
		}
		if got != last {
			last, quiet = got, time.Now()
		} else if time.Since(quiet) > 5*time.Second {
			return want - got
		}
		time.Sleep(100 * time.Microsecond)
	}
}
