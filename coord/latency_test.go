package coord

import (
	"testing"
	"time"
)

func TestLatencyBucketBounds(t *testing.T) {
	for i, b := range latencyBounds {
		if got := latencyBucket(b); got != i {
			t.Errorf("latencyBucket(%v) = %d, want %d: a bound belongs to its own bucket", b, got, i)
		}
		if got := latencyBucket(b + 1); got != i+1 {
			t.Errorf("latencyBucket(%v+1ns) = %d, want %d", b, got, i+1)
		}
		if i > 0 && latencyBounds[i-1] >= b {
			t.Fatalf("bounds not increasing at %d", i)
		}
	}
	if got := latencyBucket(0); got != 0 {
		t.Errorf("latencyBucket(0) = %d", got)
	}
	if got := latencyBucket(time.Hour); got != LatencyBuckets-1 {
		t.Errorf("latencyBucket(1h) = %d, want the overflow bucket %d", got, LatencyBuckets-1)
	}
}

func TestLatencyHistogramObserve(t *testing.T) {
	var h latencyHistogram
	h.observe(30*time.Microsecond, 10)  // bucket (20µs, 50µs]
	h.observe(-5*time.Millisecond, 2)   // clocks disagree: counts as zero
	h.observe(3*time.Millisecond, 1000) // bucket (2ms, 5ms]
	s := h.snapshot()
	if s.Count != 1012 || s.Counts[0] != 2 || s.Counts[latencyBucket(30*time.Microsecond)] != 10 || s.Counts[latencyBucket(3*time.Millisecond)] != 1000 {
		t.Fatalf("snapshot %+v", s)
	}
	if want := 10*30*time.Microsecond + 1000*3*time.Millisecond; s.Sum != want {
		t.Fatalf("Sum %v, want %v", s.Sum, want)
	}
}

func TestLatencyQuantile(t *testing.T) {
	var empty LatencyHistogram
	if q := empty.Quantile(0.5); q != 0 {
		t.Fatalf("empty histogram: p50 %v, want 0", q)
	}
	var h latencyHistogram
	h.observe(150*time.Microsecond, 100) // all in (100µs, 200µs]
	s := h.snapshot()
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0, 100 * time.Microsecond}, {0.5, 150 * time.Microsecond}, {0.99, 199 * time.Microsecond}, {1, 200 * time.Microsecond},
	} {
		if got := s.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v (linear inside the bucket)", c.q, got, c.want)
		}
	}
	h.observe(time.Hour, 100) // half of them beyond the last bound
	s = h.snapshot()
	if got := s.Quantile(0.99); got != latencyBounds[len(latencyBounds)-1] {
		t.Errorf("Quantile in the overflow bucket = %v, want the last bound", got)
	}
	if got := s.Quantile(0.25); got != 150*time.Microsecond {
		t.Errorf("Quantile(0.25) = %v, want 150µs", got)
	}
}

// TestDeliveryTally: records of one batch are added once, with the
// receive time of the batch's first record; replayed records count their
// bytes but no latency; a batch without a time has no latency.
func TestDeliveryTally(t *testing.T) {
	now := time.Unix(100, 0)
	defer func(f func() time.Time) { timeNow = f }(timeNow)
	timeNow = func() time.Time { return now }
	var c subscriberCounters
	sent := now.Add(-3 * time.Millisecond).UnixNano()
	for range 5 {
		c.delivered(sent, 10, false)
		now = now.Add(time.Second) // read once per batch: later records do not move it
	}
	c.delivered(sent-1, 7, true)
	if c.latency.snapshot().Count != 5 || c.receivedBytes.Load() != 50 {
		t.Fatalf("after the first batch: latency count %d, bytes %d; want 5 and 50", c.latency.snapshot().Count, c.receivedBytes.Load())
	}
	c.delivered(0, 1, false)
	c.flushTally()
	s := c.latency.snapshot()
	if s.Count != 5 || s.Counts[latencyBucket(3*time.Millisecond)] != 5 || c.receivedBytes.Load() != 58 {
		t.Fatalf("latency %+v, bytes %d; want 5 records at 3ms and 58 bytes", s, c.receivedBytes.Load())
	}
}
