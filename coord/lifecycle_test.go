package coord

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCloseReleasesBlockedPublish: Publish calls blocked on MaxPending all
// return ErrClosed when the publisher is closed, hard or gracefully. The
// sender is held up by the only subscriber, whose Handler stops on the
// first message: its connection fills and Send waits for it.
func TestCloseReleasesBlockedPublish(t *testing.T) {
	for _, how := range []string{"Close", "Shutdown"} {
		t.Run(how, func(t *testing.T) {
			cfg := loopbackConfig()
			cfg.Expect = 1
			cfg.MaxPending = 64 << 10
			cfg.Wire.QueueBytes = 64 << 10
			cfg.Wire.SlowTimeout = time.Hour // never cut the stalled subscriber
			pub, err := NewPublisher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			stall := make(chan struct{})
			sub, err := NewSubscriber(SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), Handler: func(ev Event) {
				if ev.Type == EventMessage {
					<-stall
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { close(stall); sub.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := pub.WaitQuorum(ctx); err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 3)
			for i := 0; i < 3; i++ {
				go func() {
					payload := make([]byte, 1024)
					for {
						if _, err := pub.Publish(ctx, "t", payload); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			waitFor(t, func() bool { return blockedPublishers(pub) == 3 }, "three Publish calls blocked on MaxPending")
			start := time.Now()
			if how == "Close" {
				pub.Close()
			} else {
				sctx, scancel := context.WithTimeout(context.Background(), time.Second)
				defer scancel()
				go func() { _ = pub.Shutdown(sctx) }() // cannot drain: the subscriber is stalled
			}
			for i := 0; i < 3; i++ {
				select {
				case err := <-errs:
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("blocked Publish returned %v, want ErrClosed", err)
					}
				case <-ctx.Done():
					t.Fatalf("%d of 3 blocked Publish calls still blocked after %s", 3-i, how)
				}
			}
			// Typically well under a millisecond; the bound is wide so that
			// a busy machine does not fail it.
			el := time.Since(start)
			t.Logf("three blocked Publish calls returned ErrClosed %v after %s", el, how)
			if !raceEnabled && el > time.Second {
				t.Errorf("blocked Publish calls returned %v after %s", el, how)
			}
		})
	}
}

// blockedPublishers counts Publish calls waiting for a change.
func blockedPublishers(p *Publisher) int { return int(p.waiting.Load()) }

// TestHandlerMayClose: a Handler that closes its own Subscriber returns,
// and the Subscriber shuts down (goleak checks no goroutine is left).
func TestHandlerMayClose(t *testing.T) {
	for _, how := range []string{"Close", "Shutdown"} {
		t.Run(how, func(t *testing.T) {
			cfg := loopbackConfig()
			cfg.Expect = 1
			pub, err := NewPublisher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			var sub *Subscriber
			ready := make(chan struct{})
			closed := make(chan struct{})
			calls := 0
			sub, err = NewSubscriber(SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), Handler: func(ev Event) {
				if ev.Type != EventMessage {
					return
				}
				calls++
				if calls == 1 {
					<-ready
					if how == "Close" {
						sub.Close()
					} else {
						_ = sub.Shutdown(context.Background())
					}
					close(closed)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			close(ready)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := pub.WaitQuorum(ctx); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 100; i++ {
				if _, err := pub.Publish(ctx, "t", []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-closed:
			case <-ctx.Done():
				t.Fatal("a Handler calling " + how + " did not return")
			}
			sub.Close() // idempotent; returns once every goroutine is gone
			if calls != 1 {
				t.Fatalf("Handler called %d times, want 1: nothing after Close", calls)
			}
			if err := sub.WaitReady(ctx); !errors.Is(err, ErrClosed) && err != nil {
				t.Fatalf("WaitReady after Close: %v", err)
			}
		})
	}
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
