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

// Turns hands out turns at a shared budget one at a time, fairly: the
// hosts that wait take turns round robin, and the waiters of one host
// take turns in the order they came, so a host that opens more
// connections gets no more turns than one that opens one, and a
// connection that asks again waits behind the other connections of its
// host. A recovery server takes a turn before each replayed batch
// (Limiter.Take), so its global byte budget is shared out per host and
// per connection instead of to whichever waiter's timer fires first, and
// only the waiter whose turn it is sleeps on the budget: the others are
// parked, costing the process nothing however many there are.
//
// Safe for concurrent use. The zero value is not usable; call NewTurns.
type Turns struct {
	mu     sync.Mutex
	busy   bool                  // a turn is out
	hosts  map[string]*turnQueue // hosts with waiters
	ring   []*turnQueue          // those hosts, in the order they take turns
	next   int                   // index in ring of the host whose turn is next
	waits  uint64                // Wait calls that had to wait
	queued int                   // waiters now
}

type turnQueue struct {
	host    string
	waiters []*turnWaiter
}

type turnWaiter struct {
	ready   chan struct{} // closed when the turn is this waiter's
	granted bool          // set under mu with ready closed
}

// NewTurns returns a Turns with no turn out.
func NewTurns() *Turns { return &Turns{hosts: make(map[string]*turnQueue)} }

// Wait blocks until it is the turn of a waiter of host (as HostKey keys
// it) and returns nil: the caller then holds the turn and must end it
// with Release. It returns ErrNoTurn if no turn came within within (0:
// no bound), or ctx.Err() if ctx ended first, holding no turn.
func (t *Turns) Wait(ctx context.Context, host string, within time.Duration) error {
	key := HostKey(host)
	t.mu.Lock()
	if !t.busy {
		t.busy = true
		t.mu.Unlock()
		return nil
	}
	w := &turnWaiter{ready: make(chan struct{})}
	q := t.hosts[key]
	if q == nil {
		q = &turnQueue{host: key}
		t.hosts[key] = q
		// A host that starts waiting takes its turn after those already
		// waiting: it goes just before the host whose turn is next.
		t.ring = append(t.ring, nil)
		copy(t.ring[t.next+1:], t.ring[t.next:])
		t.ring[t.next] = q
		t.next++
		if t.next == len(t.ring) {
			t.next = 0
		}
	}
	q.waiters = append(q.waiters, w)
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
	t.removeLocked(key, w)
	return err
}

// Release ends the caller's turn and gives the next one out.
func (t *Turns) Release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.grantLocked()
}

// grantLocked gives the turn to the first waiter of the next host in the
// ring, or marks it free when nobody waits.
func (t *Turns) grantLocked() {
	if len(t.ring) == 0 {
		t.busy = false
		return
	}
	if t.next >= len(t.ring) {
		t.next = 0
	}
	q := t.ring[t.next]
	w := q.waiters[0]
	q.waiters[0] = nil
	q.waiters = q.waiters[1:]
	t.queued--
	if len(q.waiters) == 0 {
		t.dropHostLocked(t.next) // t.next now names the host after q
	} else {
		t.next = (t.next + 1) % len(t.ring)
	}
	w.granted = true
	close(w.ready)
}

// removeLocked takes a waiter that gave up out of its host's queue.
func (t *Turns) removeLocked(key string, w *turnWaiter) {
	q := t.hosts[key]
	if q == nil {
		return
	}
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			t.queued--
			break
		}
	}
	if len(q.waiters) == 0 {
		for i, x := range t.ring {
			if x == q {
				t.dropHostLocked(i)
				break
			}
		}
	}
}

// dropHostLocked takes the host at index i out of the ring, keeping next
// on the same host (or the one after a dropped next).
func (t *Turns) dropHostLocked(i int) {
	delete(t.hosts, t.ring[i].host)
	copy(t.ring[i:], t.ring[i+1:])
	t.ring[len(t.ring)-1] = nil
	t.ring = t.ring[:len(t.ring)-1]
	if i < t.next {
		t.next--
	}
	if len(t.ring) == 0 || t.next >= len(t.ring) {
		t.next = 0
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
