package coord

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// recorder is a Handler that checks ordering as events arrive and keeps
// counts for assertions. Safe to read from the test goroutine.
type recorder struct {
	mu        sync.Mutex
	next      map[string]uint64 // next expected seq per topic
	received  int
	losses    []Event
	restarts  []Event
	errs      []string
	firstTime int64 // earliest publish time of any DATA received
	ended     bool
	joined    int
	replayed  int
	caughtUp  []Event
	done      chan struct{}
	doneOnce  sync.Once
	want      int // close done after this many messages (0: at END)
}

func newRecorder(want int) *recorder {
	return &recorder{next: make(map[string]uint64), done: make(chan struct{}), want: want}
}

func (r *recorder) handle(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Type {
	case EventJoined:
		r.joined++
	case EventMessage:
		key := streamKey(ev)
		if n, ok := r.next[key]; ok && ev.Seq != n {
			r.errs = append(r.errs, fmt.Sprintf("%s: got seq %d, want %d", key, ev.Seq, n))
		}
		r.next[key] = ev.Seq + 1
		r.received++
		if ev.Replay {
			r.replayed++
		}
		if r.firstTime == 0 || ev.Time < r.firstTime {
			r.firstTime = ev.Time
		}
		if r.want > 0 && r.received == r.want {
			r.doneOnce.Do(func() { close(r.done) })
		}
	case EventLoss:
		key := streamKey(ev)
		if n, ok := r.next[key]; ok && ev.From != n {
			r.errs = append(r.errs, fmt.Sprintf("%s: loss from %d, want %d", key, ev.From, n))
		}
		r.losses = append(r.losses, ev)
		r.next[key] = ev.To + 1
	case EventCaughtUp:
		r.caughtUp = append(r.caughtUp, ev)
	case EventRestart:
		r.restarts = append(r.restarts, ev)
	case EventEnd:
		r.ended = true
		if r.want == 0 {
			r.doneOnce.Do(func() { close(r.done) })
		}
	}
}

// wait blocks until r is done (its message count, or END), failing the
// test with what arrived if ctx ends first.
func (r *recorder) wait(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	select {
	case <-r.done:
	case <-ctx.Done():
		got, _, _, _ := r.snapshot()
		t.Fatalf("%s: received %d of %d before the deadline", name, got, r.want)
	}
}

func (r *recorder) snapshot() (received int, losses []Event, errs []string, first int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received, append([]Event(nil), r.losses...), append([]string(nil), r.errs...), r.firstTime
}

func (r *recorder) check(t testing.TB, name string, want int) {
	t.Helper()
	got, losses, errs, _ := r.snapshot()
	if got != want || len(losses) != 0 || len(errs) != 0 {
		t.Errorf("%s: received %d of %d, losses %v, order errors %v", name, got, want, losses, errs)
	}
}

func streamKey(ev Event) string { return fmt.Sprintf("epoch %d topic %s", ev.Epoch, ev.Topic) }

// lostCount sums the ranges of the recorded losses.
func (r *recorder) lostCount() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for _, l := range r.losses {
		n += l.To - l.From + 1
	}
	return n
}

func (r *recorder) counts() (received, replayed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received, r.replayed
}
