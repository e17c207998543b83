package cli

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestSignals: the first SIGINT cancels Stop, the second Abort.
func TestSignals(t *testing.T) {
	s := WatchSignals(context.Background())
	defer s.Close()
	if s.Interrupted() {
		t.Fatal("interrupted before any signal")
	}
	deadline := time.After(10 * time.Second)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Stop.Done():
	case <-deadline:
		t.Fatal("SIGINT did not cancel Stop")
	}
	if !s.Interrupted() || s.Abort.Err() != nil {
		t.Fatalf("after one signal: interrupted %v, abort %v", s.Interrupted(), s.Abort.Err())
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Abort.Done():
	case <-deadline:
		t.Fatal("a second signal did not cancel Abort")
	}
}

// TestSignalsClose: Close without a signal ends both contexts, and is not
// an interruption.
func TestSignalsClose(t *testing.T) {
	s := WatchSignals(context.Background())
	s.Close()
	s.Close()
	if s.Stop.Err() == nil || s.Abort.Err() == nil || s.Interrupted() {
		t.Fatalf("after Close: stop %v abort %v interrupted %v", s.Stop.Err(), s.Abort.Err(), s.Interrupted())
	}
}
