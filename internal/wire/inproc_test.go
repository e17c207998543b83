package wire

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// TestInprocZeroCopy: over inproc:// a borrowing Sub gets the very
// frames the Pub was given, not copies, and the Msg goes back to its
// owner (OnFree) only once the consumer released the delivery.
func TestInprocZeroCopy(t *testing.T) {
	p, s := pubSubOver(t, "inproc://zero-copy", PubConfig{}, SubConfig{Borrow: true})
	body := []byte("payload that is never copied")
	var freed atomic.Int32
	m := &Msg{Frames: [][]byte{[]byte("t"), body}, OnFree: func(*Msg) { freed.Add(1) }}
	if err := p.Send(testCtx(t, 5*time.Second), m); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	for {
		d, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != Messages {
			continue
		}
		got := d.Msgs.Msg(0)[1]
		if unsafe.SliceData(got) != unsafe.SliceData(body) {
			t.Error("the frame was copied")
		}
		if freed.Load() != 0 {
			t.Error("OnFree ran while the consumer held the message")
		}
		if !d.InProcess {
			t.Error("a batch lent in place is not marked InProcess")
		}
		d.Release()
		break
	}
	if !pollUntil(5*time.Second, func() bool { return freed.Load() == 1 }) {
		t.Errorf("OnFree ran %d times after Release", freed.Load())
	}
}

// TestInprocCopyingSub: a Sub that does not borrow reads the ZMTP byte
// stream, as on a socket.
func TestInprocCopyingSub(t *testing.T) {
	p, s := pubSubOver(t, "inproc://copying", PubConfig{}, SubConfig{})
	ctx := testCtx(t, 10*time.Second)
	for i := range 50 {
		if err := p.Send(ctx, &Msg{Frames: [][]byte{fmt.Appendf(nil, "m%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := recvPayloads(t, s, 50); got[49] != "m49" {
		t.Errorf("got %q", got[49])
	}
}

// TestInprocBindConnect: names are process-wide and bound once;
// connecting to a name nobody binds is refused at once, a Sub keeps
// trying and joins when the bind happens; Close frees the name.
func TestInprocBindConnect(t *testing.T) {
	c, err := NewClient("inproc://not-yet", ClientConfig{Timeout: 200 * time.Millisecond, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Request(testCtx(t, 5*time.Second), [][]byte{[]byte("x")}); !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "nothing is bound") {
		t.Errorf("request before bind: %v", err)
	}

	s := NewSub(SubConfig{Borrow: true, ReconnectMin: time.Millisecond, ReconnectMax: 10 * time.Millisecond}, "")
	defer s.Close()
	if err := s.Connect("inproc://not-yet"); err != nil {
		t.Fatal(err)
	}
	p, err := Listen("inproc://not-yet", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("inproc://not-yet", PubConfig{}); err == nil || !strings.Contains(err.Error(), "already bound") {
		t.Errorf("second bind: %v", err)
	}
	ctx := testCtx(t, 10*time.Second)
	for {
		d, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind == Connected {
			break
		}
	}
	p.Close()
	p2, err := Listen("inproc://not-yet", PubConfig{})
	if err != nil {
		t.Fatalf("bind after Close: %v", err)
	}
	p2.Close()
}

// TestInprocSlowConsumer: a borrowing Sub that stops releasing what it
// was lent is cut as a slow consumer (its lane full past SlowTimeout, or
// its queue past MaxQueueBytes), counted with its dropped messages,
// while a healthy subscriber gets everything; the Pub's memory stays
// within MaxQueueBytes.
func TestInprocSlowConsumer(t *testing.T) {
	slowCut := make(chan PeerEvent, 1)
	cfg := PubConfig{SlowTimeout: MinSlowTimeout, QueueBytes: 64 << 10, MaxQueueBytes: 4 << 20, OnEvent: func(ev PeerEvent) {
		if ev.Type == PeerSlow {
			slowCut <- ev
		}
	}}
	p, healthy := pubSubOver(t, "inproc://slow", cfg, SubConfig{Borrow: true})
	stalled := NewSub(SubConfig{Borrow: true}, "")
	defer stalled.Close()
	stalled.Connect(p.Endpoint())
	if !pollUntil(10*time.Second, func() bool { return p.Peers() == 2 }) {
		t.Fatal("second subscriber did not connect")
	}
	// The stalled one takes deliveries and never releases them.
	stop := make(chan struct{})
	held := make(chan int, 1)
	go func() {
		var n int
		defer func() { held <- n }()
		for {
			select {
			case d := <-stalled.Deliveries():
				if d.Kind == Messages {
					n += d.Msgs.Len()
				}
			case <-stop:
				return
			}
		}
	}()
	const total = 20000
	body := make([]byte, 1024)
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := range total {
			if err := p.Send(ctx, &Msg{Frames: [][]byte{fmt.Appendf(nil, "%d", i), body}}); err != nil {
				done <- err
				return
			}
			if q := p.Stats().QueuedBytes; q > int64(cfg.MaxQueueBytes)+int64(inprocWindow)+8<<10 {
				done <- fmt.Errorf("the Pub holds %d bytes", q)
				return
			}
		}
		done <- nil
	}()
	got := recvPayloads(t, healthy, total)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got[total-1] != fmt.Sprint(total-1) {
		t.Errorf("healthy subscriber's last %q", got[total-1])
	}
	select {
	case ev := <-slowCut:
		if !errors.Is(ev.Err, ErrSlowConsumer) || ev.Dropped == 0 {
			t.Errorf("PeerSlow %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("stalled subscriber not cut: %+v", p.Stats())
	}
	close(stop)
	<-held
	if st := p.Stats(); st.SlowConsumers != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestInprocShutdownDelivers: Shutdown flushes to an inproc subscriber
// it waits for and half-closes; the subscriber reads everything, then
// the end of the stream.
func TestInprocShutdownDelivers(t *testing.T) {
	p, s := pubSubOver(t, "inproc://shutdown", PubConfig{}, SubConfig{Borrow: true})
	ctx := testCtx(t, 10*time.Second)
	for i := range 1000 {
		if err := p.Send(ctx, &Msg{Frames: [][]byte{fmt.Appendf(nil, "%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(ctx, func(ConnID) bool { return true }) }()
	got := recvPayloads(t, s, 1000)
	if got[999] != "999" {
		t.Errorf("last %q", got[999])
	}
	for {
		d, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind == Disconnected {
			break
		}
		d.Release()
	}
	s.Close() // hangs up, releasing Shutdown
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
