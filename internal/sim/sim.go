// Package sim is a deterministic discrete-event scheduler for simulation
// tests, in the manner of FoundationDB's simulation and TigerBeetle's
// VOPR: one goroutine runs events in time order on a simulated clock, and
// one seed drives every random choice, so a run is a pure function of its
// seed and a failing seed replays exactly.
//
// The simulated code must take the time from Sim.Now and its randomness
// from Sim.Rand, start no goroutine and iterate no map where the order is
// visible: anything else makes a seed stop replaying.
package sim

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Sim is a simulated clock and the events scheduled on it.
type Sim struct {
	seed  uint64
	now   time.Time
	start time.Time
	rand  *rand.Rand
	queue events
	seq   uint64
	steps uint64
	trace trace
}

// Start is the simulated time every run starts at, so traces of the same
// seed print the same times.
var Start = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// New returns a simulation at Start, its randomness drawn from seed.
// traceLines bounds the trace kept for a failure report (the most recent
// lines win); 0 keeps none.
func New(seed uint64, traceLines int) *Sim {
	return &Sim{
		seed:  seed,
		now:   Start,
		start: Start,
		rand:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		trace: trace{lines: make([]string, 0, min(traceLines, 1024)), max: traceLines},
	}
}

// Seed returns the seed the simulation was made with.
func (s *Sim) Seed() uint64 { return s.seed }

// Now returns the simulated time.
func (s *Sim) Now() time.Time { return s.now }

// Elapsed returns the simulated time since Start.
func (s *Sim) Elapsed() time.Duration { return s.now.Sub(s.start) }

// Rand returns the simulation's source of randomness.
func (s *Sim) Rand() *rand.Rand { return s.rand }

// Steps returns how many events ran.
func (s *Sim) Steps() uint64 { return s.steps }

// Timer is a scheduled event; Stop cancels it.
type Timer struct {
	at      time.Time
	ns      int64 // at, as nanoseconds since Start: cheap to compare
	seq     uint64
	what    string
	fn      func()
	index   int
	stopped bool
}

// Stop cancels t if it has not run; it reports whether it did.
func (t *Timer) Stop() bool {
	if t == nil || t.stopped || t.index < 0 {
		return false
	}
	t.stopped = true
	return true
}

// Pending reports whether t is still to run.
func (t *Timer) Pending() bool { return t != nil && !t.stopped && t.index >= 0 }

// When returns when t runs.
func (t *Timer) When() time.Time { return t.at }

// At schedules fn at t (now, if t is in the past). Events at the same
// time run in the order they were scheduled. what names the event in the
// trace.
func (s *Sim) At(t time.Time, what string, fn func()) *Timer {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	ev := &Timer{at: t, ns: int64(t.Sub(s.start)), seq: s.seq, what: what, fn: fn}
	heap.Push(&s.queue, ev)
	return ev
}

// After schedules fn d from now.
func (s *Sim) After(d time.Duration, what string, fn func()) *Timer {
	return s.At(s.now.Add(d), what, fn)
}

// Step runs the next event and reports whether there was one.
func (s *Sim) Step() bool {
	for s.queue.Len() > 0 {
		ev := heap.Pop(&s.queue).(*Timer)
		if ev.stopped {
			continue
		}
		s.now = ev.at
		s.steps++
		if ev.what != "" {
			s.Tracef("%s", ev.what)
		}
		ev.fn()
		return true
	}
	return false
}

// RunUntil runs events until done reports true (checked after every
// event), no event is left, or the next event is after deadline. It
// reports whether done became true.
func (s *Sim) RunUntil(deadline time.Time, done func() bool) bool {
	for {
		if done != nil && done() {
			return true
		}
		next, ok := s.peek()
		if !ok || next.After(deadline) {
			if s.now.Before(deadline) && ok {
				s.now = deadline
			}
			return done != nil && done()
		}
		s.Step()
	}
}

func (s *Sim) peek() (time.Time, bool) {
	for s.queue.Len() > 0 {
		if ev := s.queue[0]; !ev.stopped {
			return ev.at, true
		}
		heap.Pop(&s.queue)
	}
	return time.Time{}, false
}

// Pending returns the number of events scheduled and not stopped.
func (s *Sim) Pending() int {
	n := 0
	for _, ev := range s.queue {
		if !ev.stopped {
			n++
		}
	}
	return n
}

// Tracef adds a line to the trace, stamped with the simulated time.
func (s *Sim) Tracef(format string, args ...any) {
	if s.trace.max == 0 {
		return
	}
	s.trace.add(fmt.Sprintf("%12.6fs  ", s.Elapsed().Seconds()) + fmt.Sprintf(format, args...))
}

// Trace returns the last lines of the trace, oldest first.
func (s *Sim) Trace(last int) string {
	lines := s.trace.ordered()
	if last > 0 && len(lines) > last {
		lines = lines[len(lines)-last:]
	}
	return strings.Join(lines, "\n")
}

// trace is a ring of lines.
type trace struct {
	lines []string
	next  int
	max   int
	full  bool
}

func (t *trace) add(l string) {
	if len(t.lines) < t.max {
		t.lines = append(t.lines, l)
		return
	}
	t.lines[t.next] = l
	t.next = (t.next + 1) % t.max
	t.full = true
}

func (t *trace) ordered() []string {
	if !t.full {
		return append([]string(nil), t.lines...)
	}
	return append(append([]string(nil), t.lines[t.next:]...), t.lines[:t.next]...)
}

// events is a heap of timers by time, then scheduling order.
type events []*Timer

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if e[i].ns != e[j].ns {
		return e[i].ns < e[j].ns
	}
	return e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) {
	e[i], e[j] = e[j], e[i]
	e[i].index, e[j].index = i, j
}
func (e *events) Push(x any) {
	t := x.(*Timer)
	t.index = len(*e)
	*e = append(*e, t)
}
func (e *events) Pop() any {
	old := *e
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*e = old[:n-1]
	return t
}
