package coord

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/recovery"
)

// A fast subscriber beside slow ones: does a slow reader set anyone
// else's pace, and does it get what the history still holds? The
// publisher sends at full speed; the slow readers read 8 KiB every 3 ms,
// every 8 ms, or stop for 5 s (their Handler blocks, which stops their
// socket reads as a SIGSTOP would) and then read at full speed.

// paceRecords and paceSize are each phase's records: 100 MB by
// default (SYNCMQ_PACE_RECORDS sets the count), more than paceHistory
// holds (32 MiB by default, SYNCMQ_PACE_HISTORY_MIB), so that a slow
// reader's cursor falls behind what the history still has and must
// report the rest. A slow reader takes about the history's size over its
// rate to finish.
var (
	paceRecords = paceEnv("SYNCMQ_PACE_RECORDS", 100_000)
	paceHistory = paceEnv("SYNCMQ_PACE_HISTORY_MIB", 32) << 20
)

const paceSize = 1024

func paceEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// slowPace is how a slow reader reads.
type slowPace struct {
	name  string
	every time.Duration // 8 KiB each every; 0: stopped, then at full speed
	stop  time.Duration
}

var slowPaces = []slowPace{
	{name: "8KiB-every-3ms", every: 3 * time.Millisecond},
	{name: "8KiB-every-8ms", every: 8 * time.Millisecond},
	{name: "stopped-5s", stop: 5 * time.Second},
}

// paceQueues are the queue settings: the defaults, and the small ones
// under which one slow reader used to pace everyone.
var paceQueues = []struct {
	name string
	mod  func(*PublisherConfig)
}{
	{"default", func(*PublisherConfig) {}},
	{"small", func(c *PublisherConfig) { c.Wire.QueueBytes, c.Wire.MaxQueueBytes = 256<<10, 4<<20 }},
}

// paceSub is one subscriber of a pace run: its own invariant checker
// (fed from its Handler goroutine only), and when it had every record.
type paceSub struct {
	name    string
	s       *Subscriber
	check   *invariant.Checker
	got     atomic.Int64 // records delivered
	done    atomic.Int64 // records delivered or reported lost
	allAt   atomic.Int64 // UnixNano of when done reached paceRecords
	pub     string
	epoch   uint64
	lost    map[string]uint64 // records lost, by cause
	highest uint64            // the highest sequence reported lost
	ticker  *time.Ticker
	pending int // payload bytes read since the last tick
}

func (ps *paceSub) handle(ev Event) {
	base := invariant.Event{Sub: ps.name, Run: 1, Publisher: ev.Publisher.String(), Epoch: ev.Epoch, Topic: ev.Topic}
	switch ev.Type {
	case EventJoined:
		base.Kind = invariant.Joined
		ps.pub, ps.epoch = base.Publisher, ev.Epoch
	case EventMessage:
		base.Kind, base.Seq, base.Replay = invariant.Message, ev.Seq, ev.Replay
		ps.got.Add(1)
		ps.account(1)
	case EventLoss:
		base.Kind, base.From, base.To, base.Cause = invariant.Loss, ev.From, ev.To, ev.Cause
		if ev.To >= ev.From {
			ps.lost[ev.Cause] += ev.To - ev.From + 1
			ps.highest = max(ps.highest, ev.To)
			ps.account(int64(ev.To - ev.From + 1))
		}
	case EventEnd:
		base.Kind, base.Cause = invariant.End, ev.Cause
	default:
		return
	}
	ps.check.Add(base)
}

func (ps *paceSub) account(n int64) {
	if ps.done.Add(n) == int64(paceRecords) {
		ps.allAt.Store(time.Now().UnixNano())
	}
}

// slowHandle is handle at the pace p.
func (ps *paceSub) slowHandle(p slowPace) func(Event) {
	stopped := false
	return func(ev Event) {
		ps.handle(ev)
		if ev.Type != EventMessage {
			return
		}
		if p.stop > 0 {
			if !stopped && ps.got.Load() >= 1000 {
				stopped = true
				time.Sleep(p.stop)
			}
			return
		}
		if ps.pending += len(ev.Payload); ps.pending >= 8<<10 {
			ps.pending = 0
			<-ps.ticker.C
		}
	}
}

// judge checks what ps's run handed over with the invariant checker:
// every record 1..paceRecords delivered in order or reported lost, END
// completed, its counts and its outcome as its events call for; and the
// only losses are records the history no longer held at the end (one
// topic: sequences 1..evicted).
func (ps *paceSub) judge(tb testing.TB, evicted uint64) {
	tb.Helper()
	select {
	case <-ps.s.Done():
	case <-time.After(5 * time.Minute):
		// A reader of 1 MB/s that was cut works through what it holds
		// behind its gap (up to MaxHeldBytes, 64 MiB) at that pace.
		tb.Fatalf("%s: not done 5 minutes after the publisher's shutdown", ps.name)
	}
	all := func(string) bool { return true }
	from := func(string) uint64 { return 1 }
	if !ps.check.Complete(ps.name, 1, ps.pub, ps.epoch, invariant.Finals{"t": uint64(paceRecords)}, all, from) {
		tb.Errorf("%s: saw no END", ps.name)
	}
	st := ps.s.Stats()
	ps.check.CheckCounts(ps.name, 1, invariant.Counts{Received: st.Received, Recovered: st.Recovered, Lost: st.Lost,
		LossEvents: st.LossEvents, UnknownTails: st.UnknownTails})
	said := invariant.Outcome{Name: string(OutcomeOK), ExitCode: invariant.ExitOK}
	var je *JobError
	if err := ps.s.Err(); errors.As(err, &je) {
		said.Name = string(je.Outcome)
		said.ExitCode = map[Outcome]int{OutcomeLost: invariant.ExitFailed, OutcomeQuorumFailed: invariant.ExitQuorumFailed,
			OutcomePublisherGone: invariant.ExitPublisherGone, OutcomeInterrupted: invariant.ExitInterrupted}[je.Outcome]
	} else if err != nil {
		tb.Errorf("%s: Err is %T %v, not a *JobError", ps.name, err, err)
	}
	ps.check.CheckOutcome(ps.name, 1, true, said)
	if err := ps.check.Err(); err != nil {
		tb.Error(err)
	}
	if ps.highest > evicted {
		tb.Errorf("%s: lost records up to %d (%v), but the history still holds every record after %d", ps.name, ps.highest, ps.lost, evicted)
	}
}

// paceRun is one phase: fast subscribers, and slow ones at pace, of one
// publisher sending paceRecords at full speed and shutting down.
type paceRun struct {
	fast, slow []*paceSub
	start      time.Time
	pub        *Publisher
}

func startPaceRun(tb testing.TB, fast, slow int, p slowPace, mod func(*PublisherConfig)) *paceRun {
	tb.Helper()
	cfg := loopbackConfig()
	cfg.Expect = fast + slow
	cfg.History = recovery.HistoryConfig{MaxBytes: int64(paceHistory), MaxMessages: 100_000, MaxTopics: 4}
	mod(&cfg)
	pub, err := NewPublisher(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pub.Close() })
	r := &paceRun{pub: pub}
	add := func(name string, slowAt *slowPace) *paceSub {
		ps := &paceSub{name: name, check: invariant.New(invariant.Options{}), lost: map[string]uint64{}}
		h := ps.handle
		if slowAt != nil {
			if slowAt.every > 0 {
				ps.ticker = time.NewTicker(slowAt.every)
				tb.Cleanup(ps.ticker.Stop)
			}
			h = ps.slowHandle(*slowAt)
		}
		s, err := NewSubscriber(SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: name, Handler: h})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		ps.s = s
		return ps
	}
	for i := 0; i < fast; i++ {
		r.fast = append(r.fast, add(fmt.Sprintf("fast-%d", i), nil))
	}
	for i := 0; i < slow; i++ {
		r.slow = append(r.slow, add(fmt.Sprintf("slow-%d", i), &p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pub.WaitQuorum(ctx); err != nil {
		tb.Fatal(err)
	}
	return r
}

// publish sends every record at full speed and returns the fast
// subscribers' rate, records/s each from the first publish to its last
// record, the slowest of them.
func (r *paceRun) publish(tb testing.TB) float64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := make([]byte, paceSize)
	r.start = time.Now()
	for i := 0; i < paceRecords; i++ {
		if _, err := r.pub.Publish(ctx, "t", payload); err != nil {
			tb.Fatal(err)
		}
	}
	var last int64
	for _, f := range r.fast {
		for f.allAt.Load() == 0 {
			if ctx.Err() != nil {
				var got []int64
				for _, ps := range append(slices.Clone(r.fast), r.slow...) {
					got = append(got, ps.got.Load())
				}
				tb.Fatalf("%s got %d of %d (fast %d, slow %d; each got %v); publisher %+v", f.name, f.got.Load(), paceRecords,
					len(r.fast), len(r.slow), got, r.pub.Stats())
			}
			time.Sleep(time.Millisecond)
		}
		last = max(last, f.allAt.Load())
	}
	return float64(paceRecords) / time.Duration(last-r.start.UnixNano()).Seconds()
}

// finish shuts the publisher down (it waits for every subscriber's BYE)
// and judges every subscriber.
func (r *paceRun) finish(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err := r.pub.Shutdown(ctx)
	// What Shutdown says must be what the subscribers saw: nil when
	// nobody lost anything, else an *EndError naming each that did, with
	// its count, and nobody unconfirmed.
	var ee *EndError
	if err != nil && !errors.As(err, &ee) {
		tb.Fatalf("publisher Shutdown: %v", err)
	}
	for _, ps := range append(slices.Clone(r.fast), r.slow...) {
		ps.judge(tb, r.pub.Stats().Retained.Evicted)
		var said uint64
		if ee != nil {
			said = ee.Lost[ps.name]
		}
		if owed := ps.check.LostAfter(ps.name, 1, ps.pub, ps.epoch); said != owed {
			tb.Errorf("%s: the publisher says it lost %d, its events say %d (Shutdown: %v)", ps.name, said, owed, err)
		}
	}
	if ee != nil && len(ee.Unconfirmed) > 0 {
		tb.Errorf("publisher Shutdown: %v", err)
	}
}

// lost adds up what subs lost, by cause.
func lost(subs []*paceSub, into map[string]uint64) {
	for _, s := range subs {
		for cause, n := range s.lost {
			into[cause] += n
		}
	}
}

// BenchmarkSlowBesideFast: one fast and one slow subscriber (pairs=1),
// and ten of each (pairs=10), at 1 KiB, the publisher at full speed,
// the slow ones reading 8 KiB every 3 ms, every 8 ms, or stopped for
// 5 s; at the default queue settings and at small ones (QueueBytes
// 256 KiB, MaxQueueBytes 4 MiB). Each op runs the fast subscribers
// alone, then beside the slow ones, then alone again, and reports
// rate-ratio, their rate beside the slow ones over the mean of their
// rates alone (the goal is at least 0.9); every subscriber
// is judged by the invariant checker, and a loss of a record the history
// still held at the end fails it, as does a publisher that says other
// than its subscribers saw. The history holds 32 MiB of the 100 MB
// sent, so a slow reader's cursor falls behind it. Run with -benchtime
// 1x (an op takes up to two minutes, most of it the slow readers
// reading).
func BenchmarkSlowBesideFast(b *testing.B) {
	for _, pairs := range []int{1, 10} {
		for _, q := range paceQueues {
			for _, p := range slowPaces {
				b.Run(fmt.Sprintf("pairs=%d/queues=%s/slow=%s", pairs, q.name, p.name), func(b *testing.B) {
					benchSlowBesideFast(b, pairs, p, q.mod)
				})
			}
		}
	}
}

func benchSlowBesideFast(b *testing.B, pairs int, p slowPace, mod func(*PublisherConfig)) {
	b.ReportAllocs()
	b.SetBytes(int64(paceRecords) * paceSize)
	var ratios []float64
	var alone, beside float64
	var catchUps, merged, cut uint64
	fastLost, slowLost := map[string]uint64{}, map[string]uint64{}
	var slowTook time.Duration
	for i := 0; i < b.N; i++ {
		// Alone before and after, beside between: what else the machine
		// runs weighs on both alike.
		alonePhase := func() float64 {
			a := startPaceRun(b, pairs, 0, p, mod)
			ra := a.publish(b)
			a.finish(b)
			lost(a.fast, fastLost)
			a.pub.Close()
			return ra
		}
		ra := alonePhase()

		w := startPaceRun(b, pairs, pairs, p, mod)
		rw := w.publish(b)
		w.finish(b)
		slowTook += time.Since(w.start)
		st := w.pub.Stats()
		catchUps, merged, cut = catchUps+st.CatchUps, merged+st.CatchUpsMerged, cut+st.Wire.SlowConsumers
		lost(w.fast, fastLost)
		lost(w.slow, slowLost)
		w.pub.Close()
		ra = (ra + alonePhase()) / 2
		alone, beside = alone+ra, beside+rw
		ratios = append(ratios, rw/ra)
	}
	sort.Float64s(ratios)
	n := float64(b.N)
	sum := func(m map[string]uint64) (t uint64) {
		for _, v := range m {
			t += v
		}
		return t
	}
	b.Logf("fast lost %v, slow lost %v (all runs)", fastLost, slowLost)
	b.ReportMetric(alone/n, "alone-records/s")
	b.ReportMetric(beside/n, "beside-records/s")
	b.ReportMetric(ratios[len(ratios)/2], "rate-ratio")
	b.ReportMetric(float64(sum(fastLost))/n/float64(pairs), "fast-lost/sub")
	b.ReportMetric(float64(sum(slowLost))/n/float64(pairs), "slow-lost/sub")
	b.ReportMetric(float64(catchUps)/n, "catch-ups")
	b.ReportMetric(float64(merged)/n, "merged")
	b.ReportMetric(float64(cut)/n, "cut")
	b.ReportMetric(slowTook.Seconds()/n, "slow-done-s")
}
