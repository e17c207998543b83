package coord

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The raw go-zeromq baseline benchmark uses zmq4's PUB, whose writer
// goroutine never stops (a defect internal/wire replaces).
var leakOpts = []goleak.Option{goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run")}

// TestMain fails the package if a goroutine outlives the tests. A
// memberlist probe in flight when a gossip node shuts down ends up to one
// probe interval later (see package membership), so the check first waits
// a bounded time for the goroutine set to settle; nothing else is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(settled{m}, leakOpts...)
}

type settled struct{ m *testing.M }

func (s settled) Run() int {
	code := s.m.Run()
	deadline := time.Now().Add(10 * time.Second)
	for goleak.Find(leakOpts...) != nil && time.Now().Before(deadline) { // Find retries with back-off
	}
	return code
}
