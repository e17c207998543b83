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

// loopbackConfig is DefaultPublisherConfig with every endpoint on
// 127.0.0.1 and a port the OS chooses. Tests must never bind the default
// fixed ports: packages run in parallel, and a second publisher on
// *:5563 fails to start.
func loopbackConfig() PublisherConfig {
	cfg := DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	return cfg
}
