package gogroup

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWaitWaitsForAll(t *testing.T) {
	var g Group
	release := make(chan struct{})
	for i := 0; i < 3; i++ {
		g.Go(func() { <-release })
	}
	waited := make(chan struct{})
	go func() { g.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while goroutines run")
	default:
	}
	close(release)
	<-waited
	g.Stop()
	if g.Go(func() {}) {
		t.Fatal("Go after Stop started a goroutine")
	}
}

// TestWaitFromInside: a goroutine of the group that waits (a Close called
// from a callback) waits for the others, not for itself.
func TestWaitFromInside(t *testing.T) {
	var g Group
	release := make(chan struct{})
	g.Go(func() { <-release })
	done := make(chan struct{})
	g.Go(func() {
		if !g.Inside() {
			t.Error("Inside is false in the group's own goroutine")
		}
		close(release)
		g.Wait()
		close(done)
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait from inside the group deadlocked")
	}
	g.Wait()
	if g.Inside() {
		t.Fatal("Inside is true outside the group")
	}
}

func BenchmarkGo(b *testing.B) {
	var g Group
	for i := 0; i < b.N; i++ {
		g.Go(func() {})
	}
	g.Wait()
}
