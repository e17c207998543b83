// Package clustertest starts publishers and subscribers on loopback for
// tests, and offers the polling helpers tests use instead of sleeps.
package clustertest

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Use it only where an endpoint must be known before its socket binds
// (a subscriber started before its publisher); otherwise bind port 0.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeEndpoint is Endpoint(FreePort(t)), with the same caveat.
func FreeEndpoint(t testing.TB) string {
	t.Helper()
	return Endpoint(FreePort(t))
}

// Endpoint returns "tcp://127.0.0.1:port".
func Endpoint(port int) string { return fmt.Sprintf("tcp://127.0.0.1:%d", port) }

// WaitFor polls cond every few milliseconds until it holds, failing the
// test after timeout with what it was waiting for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
