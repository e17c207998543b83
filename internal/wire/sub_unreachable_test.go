package wire

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestSubReportsUnreachableEndpoint: an endpoint that refuses connections,
// or whose host does not resolve, is reported at warn level after a few
// seconds of trying, not only at debug.
func TestSubReportsUnreachableEndpoint(t *testing.T) {
	for _, endpoint := range []string{closedEndpoint(t), "tcp://no-such-host.invalid:5561"} {
		t.Run(endpoint, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			s := NewSub(SubConfig{Logger: zap.New(core), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}, "")
			defer s.Close()
			if err := s.Connect(endpoint); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for logs.FilterMessage("cannot reach publisher; still trying").Len() == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no warning about %s after 30 s", endpoint)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if n := logs.FilterMessage("cannot reach publisher; still trying").Len(); n != 1 {
				t.Fatalf("%d warnings in the first seconds, want 1 (then one every %v)", n, unreachableEvery)
			}
		})
	}
}

// closedEndpoint returns a loopback endpoint nobody listens on.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ep := p.Endpoint()
	p.Close()
	return ep
}
