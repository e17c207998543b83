package recovery

import (
	"fmt"
	"testing"
	"time"

	"github.com/syncmq/syncmq/proto/fetch"
)

// repairSim is a Handler for a simulated subscriber whose recovery channel
// is served by a publisher that paces replays with a Limiter.
type repairSim struct {
	gen            int // bumped by every Request: older requests are abandoned
	pending        bool
	cursor, reqTo  uint64
	delivered      uint64
	lost           uint64
	caught         bool
	caughtAt, now  time.Time
	requests       int
	replayedBytes  int
	deliveredBytes int
}

func (h *repairSim) Deliver(_ uint64, p []byte, _ bool) {
	h.delivered++
	h.deliveredBytes += len(p)
}
func (h *repairSim) Request(from, to uint64) {
	h.gen++
	h.requests++
	h.pending, h.cursor, h.reqTo = true, from, to
}
func (h *repairSim) Loss(from, to uint64, _ Cause) { h.lost += to - from + 1 }
func (h *repairSim) CaughtUp(uint64) {
	if !h.caught {
		h.caught, h.caughtAt = true, h.now
	}
}

// repairScenario is a subscriber that missed gap records in a network cut
// while the publisher sent rate records/s of size bytes, and that keeps
// receiving them live while it repairs the gap from a publisher whose
// replays DefaultLimiterConfig paces, in batches of up to 64 KiB. Time is
// simulated; the channel adds no latency, so the limiter alone sets the
// pace.
type repairScenario struct {
	gap, rate uint64
	size      int
	stream    StreamConfig
	limits    LimiterConfig
}

type repairResult struct {
	peak     int64         // most bytes held
	repair   time.Duration // from the first live record after the cut to caught up
	lost     uint64
	requests int
	records  uint64 // delivered or lost
	bytes    int    // payload bytes delivered
}

func (sc repairScenario) run(tb testing.TB) repairResult {
	h := &repairSim{}
	s, err := NewStream(sc.stream, 1, h)
	if err != nil {
		tb.Fatal(err)
	}
	lim, err := NewLimiter(sc.limits)
	if err != nil {
		tb.Fatal(err)
	}
	const batchBytes = 64 << 10
	perBatch := max(1, batchBytes/(sc.size+4))
	payload := make([]byte, sc.size)
	interval := time.Second / time.Duration(sc.rate)
	start := t0
	nextLive, liveSeq := start, sc.gap+1
	nextServe := start
	s.Reconnected(start)
	for steps := 0; steps < 10_000_000; steps++ {
		if h.caught && !h.pending {
			break
		}
		if nextLive.Sub(start) > time.Minute {
			tb.Fatalf("not caught up after a minute: %+v", s.Stats())
		}
		if !h.pending || nextLive.Before(nextServe) {
			h.now = nextLive
			s.Live(liveSeq, payload, nextLive)
			liveSeq++
			nextLive = nextLive.Add(interval)
			s.Tick(h.now)
			if h.pending && nextServe.Before(h.now) {
				nextServe = h.now
			}
			continue
		}
		// The publisher sends the next batch of the outstanding request.
		h.now = nextServe
		k := min(uint64(perBatch), h.reqTo-h.cursor+1)
		n := int(k)*(sc.size+4) + 64 // records, their length prefixes, envelope
		wait, ok := lim.Take("192.0.2.1:40000", n, nextServe)
		if !ok {
			nextServe = nextServe.Add(wait)
			continue
		}
		h.replayedBytes += n
		gen := h.gen
		for q := h.cursor; q < h.cursor+k && gen == h.gen; q++ {
			s.Replay(q, payload, nextServe)
		}
		if gen != h.gen {
			continue // the stream moved on to a new request
		}
		h.cursor += k
		if h.cursor > h.reqTo {
			h.pending = false
			s.RepairDone(fetch.StatusComplete, 1, nextServe)
		}
	}
	st := s.Stats()
	return repairResult{peak: st.HeldBytesPeak, repair: h.caughtAt.Sub(start), lost: h.lost, requests: h.requests,
		records: h.delivered + h.lost, bytes: h.deliveredBytes}
}

// BenchmarkStreamRepairUnderLoad repairs a 60,000-record gap (a 3 s cut at
// 20,000 records/s) while 20,000 records/s keep arriving live, with
// replays paced by DefaultLimiterConfig's per-host budget. It reports the
// most memory held behind the gap (held-MiB), the simulated time to catch
// up (repair-s) and records lost (lost, 0 unless held-MiB reached the
// bound); ns/op is the CPU cost of the whole scenario. bound=10k-records
// holds what the former default of 10,000 records held at 1 KiB, for
// comparison.
func BenchmarkStreamRepairUnderLoad(b *testing.B) {
	for _, bc := range []struct {
		size  int
		bound int64
		name  string
	}{
		{100, DefaultMaxHeldBytes, "default"},
		{1024, DefaultMaxHeldBytes, "default"},
		{1024, 10_000 * (1024 + HeldRecordOverhead), "10k-records"},
		{1500, DefaultMaxHeldBytes, "default"},
	} {
		b.Run(fmt.Sprintf("size=%d/bound=%s", bc.size, bc.name), func(b *testing.B) {
			sc := repairScenario{gap: 60_000, rate: 20_000, size: bc.size, stream: DefaultStreamConfig(), limits: DefaultLimiterConfig()}
			sc.stream.MaxHeldBytes = bc.bound
			var r repairResult
			b.ReportAllocs()
			for b.Loop() {
				r = sc.run(b)
			}
			b.SetBytes(int64(r.bytes))
			b.ReportMetric(float64(r.peak)/(1<<20), "held-MiB")
			b.ReportMetric(r.repair.Seconds(), "repair-s")
			b.ReportMetric(float64(r.lost), "lost")
			b.ReportMetric(float64(r.requests), "requests")
		})
	}
}

// TestStreamRepairUnderLoad runs the benchmark's scenario once: the gap is
// repaired and nothing is lost with the default limits at 1 KiB, and at a
// size whose repair outlasts DefaultMaxHeldBytes, the stream gives the
// oldest gap up rather than hold more.
func TestStreamRepairUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 150,000 records")
	}
	sc := repairScenario{gap: 60_000, rate: 20_000, size: 1024, stream: DefaultStreamConfig(), limits: DefaultLimiterConfig()}
	r := sc.run(t)
	if r.lost != 0 || r.peak > DefaultMaxHeldBytes || r.peak == 0 {
		t.Fatalf("1 KiB: %+v", r)
	}
	sc.size = 1500
	r = sc.run(t)
	if r.lost == 0 || r.peak > DefaultMaxHeldBytes+2048 { // one record's cost above the bound, at the moment of overflow
		t.Fatalf("1500 B: %+v", r)
	}
	t.Logf("1500 B: %d lost, %.1f MiB held at most", r.lost, float64(r.peak)/(1<<20))
}
