package membership

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests.
//
// Node.Close stops this package's goroutines before it returns, but a
// memberlist probe that was in flight finishes up to one ProbeInterval
// later (it waits on its own ack timer), which is longer than goleak's
// default grace period. settled therefore waits, up to settleTimeout, for
// the goroutine set to become clean before the strict check runs; nothing
// is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(settled{m})
}

// settleTimeout bounds the wait for memberlist's trailing goroutines:
// several local-profile probe intervals and TCP timeouts.
const settleTimeout = 10 * time.Second

type settled struct{ m *testing.M }

// Run runs the tests, then polls until no unexpected goroutine is left or
// settleTimeout passes. goleak.Find itself retries with back-off between
// checks, so the loop does not spin.
func (s settled) Run() int {
	code := s.m.Run()
	deadline := time.Now().Add(settleTimeout)
	for goleak.Find() != nil && time.Now().Before(deadline) {
	}
	return code
}
