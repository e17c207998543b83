package wire

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// zmq4's PUB never stops its writer goroutine on Close (one of the defects
// this package exists for); the interop tests use a zmq4 PUB as a peer.
// The SYNCMQ_BARE_ZMQ4 variants leave more of zmq4's goroutines behind;
// TestBareZmq4CloseLeaks counts them, so the check is off in that mode.
func TestMain(m *testing.M) {
	if bareMode() {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"))
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
