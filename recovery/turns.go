package recovery

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrNoTurn is what Turns.Wait returns when no turn came within the
// time the caller would wait.
var ErrNoTurn = errors.New("recovery: no turn within the wait allowed")

// Turns hands out turns at a shared budget one at a time, in fair shares
// of bytes: first among the hosts that wait, then among the waiters of
// each host. A host that opens more connections gets no more than one
// that opens one, and a connection that asks for big batches is served
// less often than one that asks for small ones, so that each gets about
// the same bytes while they all wait. A recovery server takes a turn
// before each replayed batch (Limiter.Take): its global byte budget is
// shared out per host and per connection instead of going to whichever
// waiter's timer fires first, and only the waiter whose turn it is
// sleeps on the budget, while the others are parked at no cost however
// many there are.
//
// The order is self-clocked fair queueing (Golestani, 1994), on two
// levels. Each waiting host has a finish tag: when it starts waiting or
// was just served, its start plus the bytes its next waiter asks for,
// where its start is the later of its last finish tag and the virtual
// time (the tag of the turn given last). The host with the smallest tag
// gets the turn, and within it the waiter with the smallest tag on the
// host's own clock, counted the same way. A host or connection that
// stopped waiting keeps nothing: fairness is among those that wait.
//
// Safe for concurrent use. The zero value is not usable; call NewTurns.
type Turns struct {
	mu     sync.Mutex
	busy   bool                 // a turn is out
	vnow   float64              // the host tag of the turn given last
	hosts  map[string]*turnHost // hosts with waiters
	waits  uint64               // Wait calls that had to wait
	queued int                  // waiters now
}

// turnHost is one host that waits.
type turnHost struct {
	key     string
	waiters []*turnWaiter
	start   float64 // where its next finish tag counts from
	vnow    float64 // its own virtual time: the tag of its waiter served last
}

type turnWaiter struct {
	n       float64       // bytes asked for
	tag     float64       // finish tag among its host's waiters
	ready   chan struct{} // closed when the turn is this waiter's
	granted bool          // set under mu with ready closed
}

// NewTurns returns a Turns with no turn out.
func NewTurns() *Turns { return &Turns{hosts: make(map[string]*turnHost)} }

// Wait blocks until it is the turn of this waiter of host (as HostKey
// keys it), which will take n bytes of the budget, and returns nil: the
// caller then holds the turn and must end it with Release. It returns
// ErrNoTurn if no turn came within within (0: no bound), or ctx.Err() if
// ctx ended first, holding no turn.
func (t *Turns) Wait(ctx context.Context, host string, n int, within time.Duration) error {
	key := HostKey(host)
	t.mu.Lock()
	if !t.busy {
		t.busy = true
		t.mu.Unlock()
		return nil
	}
	h := t.hosts[key]
	if h == nil {
		h = &turnHost{key: key, start: t.vnow}
		t.hosts[key] = h
	}
	w := &turnWaiter{n: float64(max(n, 1)), ready: make(chan struct{})}
	w.tag = h.vnow + w.n
	h.waiters = append(h.waiters, w)
	t.waits++
	t.queued++
	t.mu.Unlock()
	var expired <-chan time.Time
	if within > 0 {
		timer := time.NewTimer(within)
		defer timer.Stop()
		expired = timer.C
	}
	err := ErrNoTurn
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-expired:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.granted {
		// The turn came as the wait ended: hand it on.
		t.grantLocked()
		return err
	}
	t.removeLocked(h, w)
	return err
}

// Release ends the caller's turn and gives the next one out.
func (t *Turns) Release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.grantLocked()
}

// head returns the index of h's waiter with the smallest tag (the
// earliest on a tie).
func (h *turnHost) head() int {
	best := 0
	for i, w := range h.waiters {
		if w.tag < h.waiters[best].tag {
			best = i
		}
	}
	return best
}

// grantLocked gives the turn to the waiter with the smallest tag of the
// host with the smallest finish tag, or marks it free when nobody waits.
func (t *Turns) grantLocked() {
	var best *turnHost
	var bestTag float64
	for _, h := range t.hosts {
		tag := h.start + h.waiters[h.head()].n
		if best == nil || tag < bestTag || (tag == bestTag && h.key < best.key) {
			best, bestTag = h, tag
		}
	}
	if best == nil {
		t.busy = false
		return
	}
	i := best.head()
	w := best.waiters[i]
	best.waiters = append(best.waiters[:i], best.waiters[i+1:]...)
	t.queued--
	t.vnow = bestTag
	best.vnow = w.tag
	if len(best.waiters) == 0 {
		delete(t.hosts, best.key)
	} else {
		best.start = bestTag // its last finish tag, which is vnow
	}
	w.granted = true
	close(w.ready)
}

// removeLocked takes a waiter that gave up out of its host's queue.
func (t *Turns) removeLocked(h *turnHost, w *turnWaiter) {
	for i, x := range h.waiters {
		if x == w {
			h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
			t.queued--
			break
		}
	}
	if len(h.waiters) == 0 && t.hosts[h.key] == h {
		delete(t.hosts, h.key)
	}
}

// TurnsStats are a Turns' gauges and counters.
type TurnsStats struct {
	// Waiting is the number of callers waiting for a turn now.
	Waiting int
	// Waits counts Wait calls that had to wait for another's turn.
	Waits uint64
}

// Stats returns the current gauges and counters.
func (t *Turns) Stats() TurnsStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TurnsStats{Waiting: t.queued, Waits: t.waits}
}
