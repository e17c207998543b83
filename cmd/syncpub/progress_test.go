package main

import (
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
)

// TestProgressLine: the status line says what the run waits for, then
// what was published of how many, how fast and how long is left, then
// the hand-over; the final line says how many in how long.
func TestProgressLine(t *testing.T) {
	st := coord.PublisherStats{Live: 1, Need: 3}
	t0 := time.Unix(1000, 0)
	p := newProgress(func() coord.PublisherStats { return st }, 1_000_000, t0)
	if got, want := p.line(t0.Add(12*time.Second)), "waiting for the quorum: 1 of 3 subscribers (12s)"; got != want {
		t.Errorf("waiting: %q, want %q", got, want)
	}
	p.publishing(t0.Add(12 * time.Second))
	st.Published = 250_000
	if got, want := p.line(t0.Add(17*time.Second)), "published 250,000 of 1,000,000 (25%)  50,000/s  15s left"; got != want {
		t.Errorf("publishing: %q, want %q", got, want)
	}
	st.Wire.QueuedBytes = 3 << 20
	p.draining(1_000_000)
	if got, want := p.line(t0.Add(40*time.Second)), "published 1,000,000; handing them and END to the subscribers (3.0 MiB queued)"; got != want {
		t.Errorf("draining: %q, want %q", got, want)
	}
	if got, want := publishingLine(5000, 0, 1000, time.Second), "published 5,000  1,000/s"; got != want {
		t.Errorf("--stdin: %q, want %q", got, want)
	}
	if got, want := publishingLine(0, 100, 0, 0), "published 0 of 100 (0%)  0/s"; got != want {
		t.Errorf("nothing yet: %q, want %q", got, want)
	}
	if got, want := finalLine(1_000_000, 19200*time.Millisecond), "published 1,000,000 messages in 19.2s (52,083/s)"; got != want {
		t.Errorf("final: %q, want %q", got, want)
	}
}
