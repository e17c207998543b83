package membership

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// waitFor polls cond every 10 ms until it returns true, failing the test
// if timeout passes first.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// testLogger returns a logger that keeps entries in memory and prints them
// if the test fails. It never writes through t after the test, unlike
// zaptest, because memberlist goroutines may log during shutdown.
func testLogger(t testing.TB) *zap.Logger {
	core, logs := observer.New(zapcore.DebugLevel)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, e := range logs.All() {
			t.Logf("%s %s %s %v", e.Time.Format("15:04:05.000"), e.Level, e.LoggerName, e.ContextMap())
			t.Logf("    %s", e.Message)
		}
	})
	return zap.New(core)
}

// testConfig returns a fast local-profile config on 127.0.0.1 with an
// OS-chosen port.
func testConfig(t testing.TB, name string, role Role, topics ...string) Config {
	return Config{
		NodeName: name,
		BindAddr: "127.0.0.1",
		Profile:  ProfileLocal,
		Meta: Meta{
			Role:         role,
			PubEndpoint:  "tcp://127.0.0.1:5555",
			SyncEndpoint: "tcp://127.0.0.1:5556",
			Topics:       topics,
			Version:      1,
		},
		Logger: testLogger(t),
	}
}

// startNode creates a Node that is shut down when the test ends.
func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.NodeName, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Shutdown(%s): %v", cfg.NodeName, err)
		}
	})
	return n
}

// joinTo joins n to seed and fails the test on error.
func joinTo(t testing.TB, n, seed *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if k, err := n.Join(ctx, []string{seed.Addr()}); err != nil || k != 1 {
		t.Fatalf("%s.Join(%s) = %d, %v", n.Name(), seed.Addr(), k, err)
	}
}

// memberNames returns the sorted names of n's members.
func memberNames(n *Node) []string {
	var names []string
	for _, m := range n.Members() {
		names = append(names, m.Name)
	}
	return names
}

// recorder collects the events of one Node.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

// record starts collecting n's events from its channel; the goroutine ends
// when n shuts down.
func record(n *Node) *recorder {
	r := &recorder{}
	go func() {
		for ev := range n.Events() {
			r.add(ev)
		}
	}()
	return r
}

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

// find returns the last event of type typ about member name.
func (r *recorder) find(typ EventType, name string) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range slices.Backward(r.evs) {
		if ev.Type == typ && ev.Member.Name == name {
			return ev, true
		}
	}
	return Event{}, false
}

// has reports whether an event of type typ about name was recorded.
func (r *recorder) has(typ EventType, name string) bool {
	_, ok := r.find(typ, name)
	return ok
}

// String lists the recorded events, for failure messages.
func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for _, ev := range r.evs {
		s += fmt.Sprintf("%s:%s ", ev.Type, ev.Member.Name)
	}
	return s
}
