package coord

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// closedPort returns a loopback endpoint nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "tcp://" + addr
}

func TestConnectTimeoutEndsTheJobUnreachable(t *testing.T) {
	cfg := DefaultSubscriberConfig()
	cfg.Connect, cfg.Sync = closedPort(t), closedPort(t)
	cfg.ConnectTimeout = 300 * time.Millisecond
	cfg.Handler = func(Event) {}
	sub, err := NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	werr := sub.WaitReady(ctx)
	var je *JobError
	if !errors.As(werr, &je) || je.Outcome != OutcomeUnreachable {
		t.Fatalf("WaitReady: %v, want a *JobError with outcome unreachable", werr)
	}
	select {
	case <-sub.Done():
	default:
		t.Fatal("Done is not closed after the connect timeout")
	}
	if !errors.As(sub.Err(), &je) || je.Outcome != OutcomeUnreachable {
		t.Fatalf("Err: %v", sub.Err())
	}
	if !strings.Contains(je.Reason, cfg.Connect+" never connected") || strings.Contains(je.Reason, "\n") {
		t.Fatalf("reason %q: want one line naming the endpoint that never connected", je.Reason)
	}
	sub.Close()
	if !errors.As(sub.Err(), &je) || je.Outcome != OutcomeUnreachable {
		t.Fatalf("Err after Close: %v, want the outcome to stay unreachable", sub.Err())
	}
}

func TestConnectTimeoutSparesAJoinedSubscriber(t *testing.T) {
	pcfg := loopbackConfig()
	pcfg.Expect = 1
	pub, err := NewPublisher(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	cfg := DefaultSubscriberConfig()
	cfg.Connect, cfg.Sync = pub.Endpoint(), pub.SyncEndpoint()
	cfg.ConnectTimeout = MinConnectTimeout
	cfg.Handler = func(Event) {}
	sub, err := NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	case <-ctx.Done():
		t.Fatal("no end")
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("Err: %v, want nil", err)
	}
}

func TestConnectTimeoutValidation(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, ""}, {-1, ""}, {MinConnectTimeout, ""}, {time.Millisecond, "connect-timeout: 1ms is below 100ms"}} {
		cfg := DefaultSubscriberConfig()
		cfg.Connect, cfg.Sync, cfg.Handler = "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", func(Event) {}
		cfg.ConnectTimeout = tc.d
		err := cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ConnectTimeout %v: %v, want %q", tc.d, err, tc.want)
		}
	}
}
