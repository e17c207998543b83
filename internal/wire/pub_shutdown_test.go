package wire

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPubShutdownWaitsOnlyForSelected: Shutdown flushes every queue,
// waits for the subscriber waitFor selects to read everything and hang
// up, and closes the others once their queues are written: a stranger
// that never hangs up does not hold it up, and still gets its data.
func TestPubShutdownWaitsOnlyForSelected(t *testing.T) {
	const n = 1000
	ctx := testCtx(t, 30*time.Second)
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	member := dialRawSub(t, p.Endpoint(), "t", 0)
	stranger := dialRawSub(t, p.Endpoint(), "t", 0)
	waitFor(t, 5*time.Second, "both subscriptions", func() bool { return len(events.of(PeerSubscribed)) == 2 })
	var memberID ConnID
	for _, ev := range events.of(PeerSubscribed) {
		if ev.Remote == member.LocalAddr().String() {
			memberID = ev.Conn
		}
	}
	for i := 0; i < n; i++ {
		if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), seqPayload(nil, uint64(i), 16)}}); err != nil {
			t.Fatal(err)
		}
	}
	// The member reads everything, then hangs up when the Pub does.
	memberGot := make(chan int, 1)
	go func() {
		got, _ := countMessages(member, nil)
		member.Close()
		memberGot <- got
	}()
	if err := p.Shutdown(ctx, func(id ConnID) bool { return id == memberID }); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := <-memberGot; got != n {
		t.Errorf("member got %d of %d", got, n)
	}
	// The stranger never read or hung up; its data is in its socket.
	stranger.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := countMessages(stranger, nil); got != n || isTimeout(err) {
		t.Errorf("stranger got %d of %d, then %v", got, n, err)
	}
	for _, ev := range events.of(PeerDisconnected) {
		if ev.Dropped != 0 || ev.Err != nil {
			t.Errorf("disconnect %+v: want orderly, nothing dropped", ev)
		}
	}
	if err := p.Shutdown(ctx, nil); err != nil { // idempotent
		t.Errorf("second Shutdown: %v", err)
	}
	if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t")}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Shutdown: %v", err)
	}
}

// TestPubShutdownBoundedByContext: a selected subscriber that never hangs
// up holds Shutdown only until ctx ends; then the Pub is closed.
func TestPubShutdownBoundedByContext(t *testing.T) {
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	dialRawSub(t, p.Endpoint(), "t", 0)
	waitFor(t, 5*time.Second, "the subscription", func() bool { return len(events.of(PeerSubscribed)) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx, func(ConnID) bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline", err)
	}
	if d := events.of(PeerDisconnected); len(d) != 1 || !errors.Is(d[0].Err, ErrClosed) {
		t.Errorf("disconnects %+v: want the subscriber closed by Close", d)
	}
}

// TestCloseReleasesBlockedSend: a Send waiting for a subscriber's queue
// to drain returns ErrClosed when the Pub closes.
func TestCloseReleasesBlockedSend(t *testing.T) {
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{QueueBytes: 1 << 10, SlowTimeout: time.Minute, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	dialRawSub(t, p.Endpoint(), "t", 4<<10) // never reads
	waitFor(t, 5*time.Second, "the subscription", func() bool { return len(events.of(PeerSubscribed)) == 1 })
	done := make(chan error, 1)
	go func() {
		payload := make([]byte, 16<<10)
		for {
			if err := p.Send(context.Background(), &Msg{Frames: [][]byte{[]byte("t"), payload}}); err != nil {
				done <- err
				return
			}
		}
	}()
	waitFor(t, 10*time.Second, "a Send to wait", func() bool { return p.Stats().Waits > 0 })
	p.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Send returned %v, want ErrClosed", err)
	}
}
