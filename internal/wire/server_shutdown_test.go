package wire

import (
	"context"
	"testing"
	"time"
)

// TestServerShutdownFlushesReplyInService: a handler may act on a request
// (a publisher counts a subscriber into its quorum) before the reply is
// written. Close would drop that reply; Shutdown waits for it, so the
// client sees what the server did.
func TestServerShutdownFlushesReplyInService(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	entered, release := make(chan struct{}), make(chan struct{})
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{}, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		close(entered)
		<-release
		return reply([]byte("counted"))
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(srv.Endpoint(), ClientConfig{Timeout: 10 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	got := make(chan error, 1)
	go func() {
		reply, err := c.Request(ctx, [][]byte{[]byte("ready")})
		if err == nil && string(reply[0]) != "counted" {
			t.Errorf("reply %q", reply[0])
		}
		got <- err
	}()
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	// Shutdown must not finish while the handler still holds the request.
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the reply was written", err)
	case <-time.After(50 * time.Millisecond): // a bound on a negative, not synchronisation
	}
	close(release)
	if err := <-got; err != nil {
		t.Fatalf("request: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := srv.Shutdown(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
}

// TestServerShutdownBoundedByContext: a handler that never finishes does
// not hold Shutdown past its context.
func TestServerShutdownBoundedByContext(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{}, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done(): // Close cancels handlers
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(srv.Endpoint(), ClientConfig{Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go c.Request(testCtx(t, 10*time.Second), [][]byte{[]byte("x")})
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
}
