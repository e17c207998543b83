package wire

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestDeadlineWriterPatientWhileDraining: a subscriber Shutdown waits for
// may stop reading for several SlowTimeouts during the drain (busy
// repairing a gap, say). Its writer is patient then: the drain publishes
// nothing new, so it slows nobody else down, and cutting it would lose it
// the end of the stream. Without patience the same stall is a slow
// consumer.
func TestDeadlineWriterPatientWhileDraining(t *testing.T) {
	const timeout = 50 * time.Millisecond
	for _, patient := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		server.(*net.TCPConn).SetWriteBuffer(16 << 10)
		client.(*net.TCPConn).SetReadBuffer(16 << 10)
		var asked atomic.Int32
		dw := &deadlineWriter{nc: server, timeout: timeout, patient: func() bool { asked.Add(1); return patient }}
		data := make([]byte, 4<<20) // far more than the socket buffers hold
		got := make(chan int64, 1)
		go func() {
			<-time.After(10 * timeout) // the reader is busy elsewhere: the fault being injected
			n, _ := io.Copy(io.Discard, client)
			got <- n
		}()
		n, err := dw.Write(data)
		switch {
		case patient && (err != nil || n != len(data)):
			t.Errorf("patient: wrote %d of %d: %v", n, len(data), err)
		case !patient && (!isTimeout(err) || n == len(data)):
			t.Errorf("impatient: wrote %d of %d: %v, want a timeout", n, len(data), err)
		}
		server.Close()
		if k := <-got; patient && k != int64(len(data)) {
			t.Errorf("reader got %d of %d", k, len(data))
		}
		if asked.Load() == 0 {
			t.Errorf("patient=%v: the write never timed out; the test proves nothing", patient)
		}
	}
}
