package wire

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// zmq4's PUB never stops its writer goroutine on Close (one of the defects
// this package exists for, asserted by TestBareZmq4CloseLeaks); the
// interop and TestBareZmq4 tests use zmq4 sockets as peers.
func TestMain(m *testing.M) {
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
