package wire

import (
	"testing"
	"time"
)

// TestPeerEventsInOrder: each connection's PeerConnected comes before its
// PeerDisconnected, even for subscribers that hang up at once (the
// disconnection used to be reported from the peer's goroutines while the
// accepting goroutine had yet to report the connection), and the events
// account for every connection.
func TestPeerEventsInOrder(t *testing.T) {
	const n = 200
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < n; i++ {
		dialRawSub(t, p.Endpoint(), "t", 0).Close()
	}
	waitFor(t, 10*time.Second, "every disconnection reported", func() bool { return len(events.of(PeerDisconnected)) == n })
	events.mu.Lock()
	defer events.mu.Unlock()
	state := map[string]PeerEventType{}
	for _, ev := range events.events {
		switch prev := state[ev.Remote]; {
		case ev.Type == PeerConnected && prev != 0:
			t.Errorf("%s: connected twice", ev.Remote)
		case ev.Type == PeerDisconnected && prev != PeerConnected:
			t.Errorf("%s: disconnected before connected", ev.Remote)
		}
		state[ev.Remote] = ev.Type
	}
	if len(state) != n {
		t.Errorf("events for %d connections, want %d", len(state), n)
	}
}
