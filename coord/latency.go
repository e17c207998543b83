package coord

import (
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the publish-to-deliver latency
// histogram's buckets, 1-2-5 per decade from 1 µs to 50 s; one more
// bucket counts everything above. Fixed, so the histogram is a plain
// array of counters and two snapshots can always be compared.
var latencyBounds = [...]time.Duration{
	1 * time.Microsecond, 2 * time.Microsecond, 5 * time.Microsecond,
	10 * time.Microsecond, 20 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond,
	1 * time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second, 2 * time.Second, 5 * time.Second,
	10 * time.Second, 20 * time.Second, 50 * time.Second,
}

// LatencyBuckets is the number of buckets of a LatencyHistogram: one per
// bound of LatencyBounds and one for everything above the last.
const LatencyBuckets = len(latencyBounds) + 1

// LatencyBounds returns the upper bounds (inclusive) of the first
// LatencyBuckets-1 buckets of a LatencyHistogram, in increasing order.
func LatencyBounds() []time.Duration { return latencyBounds[:] }

// LatencyHistogram is a snapshot of a Subscriber's publish-to-deliver
// latency: how long after the publisher handed a batch to its socket
// (Event.Time) the subscriber delivered its records. Only records
// delivered live count; repaired ones are counted in
// SubscriberStats.Recovered instead. Across hosts it includes the
// difference between their clocks.
type LatencyHistogram struct {
	// Counts holds the records per bucket: Counts[i] those whose latency
	// was at most LatencyBounds()[i] and above the bound before; the last
	// those above every bound. Not cumulative.
	Counts [LatencyBuckets]uint64
	// Count is the sum of Counts.
	Count uint64
	// Sum is the total latency of the records counted.
	Sum time.Duration
}

// Quantile returns the latency below which a fraction q (0..1) of the
// records fell, interpolated linearly inside the bucket it lands in (as
// Prometheus's histogram_quantile does), so it is exact only to the
// bucket's width. It returns 0 for an empty histogram and the last bound
// when q lands above it.
func (h LatencyHistogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(h.Count)
	var below uint64
	for i, n := range h.Counts {
		if n == 0 || float64(below+n) < rank {
			below += n
			continue
		}
		if i == len(latencyBounds) {
			return latencyBounds[len(latencyBounds)-1]
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = latencyBounds[i-1]
		}
		frac := (rank - float64(below)) / float64(n)
		return lo + time.Duration(frac*float64(latencyBounds[i]-lo))
	}
	return latencyBounds[len(latencyBounds)-1]
}

// latencyHistogram is the live histogram: a fixed array of atomic
// counters, written by the subscriber's goroutine once per delivered
// batch and read by Stats from any goroutine without a lock.
type latencyHistogram struct {
	counts [LatencyBuckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// latencyBucket returns the bucket of d: the first bound at or above it.
func latencyBucket(d time.Duration) int {
	for i, b := range latencyBounds {
		if d <= b {
			return i
		}
	}
	return len(latencyBounds)
}

// observe counts n records delivered d after they were sent. A negative
// d (the clocks of two hosts disagree) counts as zero.
func (h *latencyHistogram) observe(d time.Duration, n uint64) {
	d = max(d, 0)
	h.counts[latencyBucket(d)].Add(n)
	h.sum.Add(int64(d) * int64(n))
}

func (h *latencyHistogram) snapshot() LatencyHistogram {
	var s LatencyHistogram
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// deliveryTally accumulates the records of the batch being delivered in
// plain fields owned by the subscriber's goroutine; subscriberCounters
// adds them to its shared counters once per batch and on every tick, so
// the per-record cost on the delivery path is a comparison and two
// increments, without an atomic operation. A batch is recognised by its
// envelope time; the receive time is read once, at its first delivered
// record.
type deliveryTally struct {
	sent     int64     // Event.Time of the batch being tallied (Unix ns)
	received time.Time // when its first record was delivered
	live     uint64    // its records delivered live, not yet added
	size     uint64    // payload bytes tallied and not yet added
}
