package recovery

import "testing"

// TestStreamLost: a LOSS labels its range, so when the repair is answered
// "not held" the range is reported with the LOSS's cause, even over a
// hint the stream had; the records after it are delivered; a LOSS below
// Next, or one already covered, changes nothing.
func TestStreamLost(t *testing.T) {
	rec := &recorder{}
	s, _ := NewStream(DefaultStreamConfig(), 1, rec)
	now := t0
	apply(t, s, &now, "live 1")
	apply(t, s, &now, "hint reconnect")
	s.Lost(2, 4, CausePublisherOverflow, now)
	if got := rec.take(); got != "D1 R2-4" {
		t.Fatalf("after the LOSS: %q", got)
	}
	apply(t, s, &now, "live 5")
	apply(t, s, &now, "done partial 5")
	if got := rec.take(); got != "L2-4:publisher-overflow D5 C5" {
		t.Fatalf("after the answer: %q", got)
	}
	s.Lost(1, 3, CauseUnknown, now) // below Next
	apply(t, s, &now, "live 6")
	if got := rec.take(); got != "D6" {
		t.Fatalf("a stale LOSS changed the stream: %q", got)
	}

	// The gap was already known (a heartbeat): the LOSS still names it.
	rec2 := &recorder{}
	s2, _ := NewStream(DefaultStreamConfig(), 1, rec2)
	apply(t, s2, &now, "hb 3")
	s2.Lost(1, 3, CauseSlowConsumer, now)
	apply(t, s2, &now, "done partial 0")
	if got := rec2.take(); got != "R1-3 L1-3:slow-consumer C3" {
		t.Fatalf("known gap: %q", got)
	}
}
