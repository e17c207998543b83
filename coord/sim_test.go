package coord

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/internal/mutation"
)

// simCISeeds is how many seeds `go test` runs by default: a minute at
// most on two cores with the race detector.
const simCISeeds = 400

// regressionSeeds replay runs that once found a bug, with what it was.
var regressionSeeds = map[uint64]string{
	2058:   "a READY retried after its ACK was lost got a fresh join, not resume",
	238:    "an unjoined restarted publisher's held END was delivered, then the publisher declared gone as well",
	30:     "a stateful subscriber drained an old epoch twice: once followed live, once again from its checkpoint",
	6616:   "the checker asked a restarted stateful run for a stream its earlier run had finished",
	280:    "on a full disk, an ACK named records held back from the journal; the rejoining subscriber's repair said complete and it reported them lost",
	776480: "a power loss cut an ended epoch's journal below records a subscriber saw; their repair was answered complete, and it reported them lost of unknown cause",
	838940: "the same, with a bit flip beside it",
}

// TestSimulation runs the simulator over many seeds and checks the
// invariant on each: SYNCMQ_SIM_SEEDS=N runs N (from SYNCMQ_SIM_FROM, 1 by
// default), SYNCMQ_SIM_SEED=S replays one with its trace. A failure prints
// its seed and the trace of events that led to it.
func TestSimulation(t *testing.T) {
	if s := os.Getenv("SYNCMQ_SIM_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SYNCMQ_SIM_SEED=%q: %v", s, err)
		}
		w := newWorld(seed, 100000, mutation.None)
		w.run()
		t.Logf("seed %d: %+v\n%s", seed, w.params, w.sim.Trace(0))
		if err := w.check.Err(); err != nil {
			t.Fatal(err)
		}
		return
	}
	n, from := envInt(t, "SYNCMQ_SIM_SEEDS", simCISeeds), envInt(t, "SYNCMQ_SIM_FROM", 1)
	seeds := make([]uint64, 0, n+len(regressionSeeds))
	for s := range regressionSeeds {
		seeds = append(seeds, s)
	}
	for i := range n {
		seeds = append(seeds, uint64(from+i))
	}
	start := time.Now()
	failed, stats := runSeeds(seeds, mutation.None)
	t.Logf("seeds: %d in %v (%s)", len(seeds), time.Since(start).Round(time.Millisecond), stats)
	fmt.Printf("seeds: %d\n", len(seeds))
	if os.Getenv("SYNCMQ_SIM_BRIEF") != "" {
		for _, f := range failed {
			t.Errorf("seed %d: %v", f.seed, f.err)
		}
		return
	}
	for _, f := range failed {
		w := newWorld(f.seed, 3000, mutation.None)
		w.run()
		t.Errorf("seed %d failed (replay: SYNCMQ_SIM_SEED=%d go test -run TestSimulation ./coord/)\nparams %+v\n%v\nlast events:\n%s",
			f.seed, f.seed, w.params, f.err, w.sim.Trace(300))
		if len(failed) > 3 {
			t.Errorf("... and %d more failed seeds", len(failed)-1)
			break
		}
	}
}

type seedFailure struct {
	seed uint64
	err  error
}

// runSeeds runs seeds on every core and returns the failures, in seed
// order, and a line of totals.
func runSeeds(seeds []uint64, mut mutation.Kind) ([]seedFailure, string) {
	var (
		next    atomic.Int64
		mu      sync.Mutex
		failed  []seedFailure
		steps   atomic.Uint64
		faulted atomic.Uint64
		simTime atomic.Int64
		catchUp atomic.Uint64 // connections taken off the live stream
		merged  atomic.Uint64 // of those, back on it
		holds   atomic.Uint64 // times publishing waited for the fastest cursor
		// The journal's disk: faults that took effect, and what the
		// journal saw of them.
		fills, flips, appendErrs, corrupt atomic.Uint64
		wg                                sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(seeds) {
					return
				}
				w := newWorld(seeds[i], 0, mut)
				w.run()
				steps.Add(w.sim.Steps())
				simTime.Add(int64(w.sim.Elapsed()))
				for _, sp := range w.pubs {
					fills.Add(uint64(sp.fills))
					flips.Add(uint64(sp.flips))
					for _, p := range sp.all {
						catchUp.Add(p.catchUps.Load())
						merged.Add(p.caughtUpMerged.Load())
						holds.Add(p.catchUpHolds.Load())
						js := p.Stats().Journal
						appendErrs.Add(js.AppendErrors)
						corrupt.Add(js.Corrupt)
					}
				}
				if !w.params.faults.none() {
					faulted.Add(1)
				}
				if err := w.check.Err(); err != nil {
					mu.Lock()
					failed = append(failed, seedFailure{seeds[i], err})
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	sortFailures(failed)
	return failed, fmt.Sprintf("%d events, %v simulated, %d with faults, %d catch-ups (%d merged back, %d holds); "+
		"journal disks filled %d times (%d failed appends), %d bits flipped (%d damaged regions found)",
		steps.Load(), time.Duration(simTime.Load()).Round(time.Second), faulted.Load(), catchUp.Load(), merged.Load(), holds.Load(),
		fills.Load(), appendErrs.Load(), flips.Load(), corrupt.Load())
}

func sortFailures(f []seedFailure) {
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j].seed < f[j-1].seed; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

// judge checks everything the run handed over against what was
// published, once it is over.
func (w *world) judge() {
	for _, p := range w.pubs {
		for _, e := range p.epochs {
			w.judgeEpoch(p, e)
		}
	}
}

// judgeEpoch checks one publisher incarnation against its subscribers:
// every run that reported its END completed covered every stream; a
// subscriber that joined started where it joined; and the publisher's
// own outcome agrees with what its subscribers got.
func (w *world) judgeEpoch(p *simPub, e *simEpoch) {
	pub := p.id.String()
	completed := map[string]bool{} // subscribers with a run that completed this epoch
	lostAfter := map[string]uint64{}
	for _, s := range w.subs {
		wants := func(topic string) bool { return true }
		start := func(topic string) uint64 {
			if w.params.startEarliest {
				return 1
			}
			if first, ok := e.joined[s.name]; ok {
				return first[topic] + 1
			}
			return 1
		}
		for run := 1; run <= s.run; run++ {
			if e.finals != nil && w.check.Complete(s.name, run, pub, e.epoch, e.finals, wants, start) {
				if ends, _ := w.check.Ended(s.name, run); ends[fmt.Sprintf("%s/%d", pub, e.epoch)] == "" {
					completed[s.name] = true
					lostAfter[s.name] += w.check.LostAfter(s.name, run, pub, e.epoch)
				}
			}
		}
		// The first run that joined owes every record from its join.
		if first, ok := e.joined[s.name]; ok && !w.params.startEarliest {
			for topic, seq := range first {
				w.check.StartsAt(s.name, 1, invariant.Stream{Publisher: pub, Epoch: e.epoch, Topic: topic}, seq+1)
			}
		}
	}
	if e.crashed || e.quorumFailed || e.outcome == nil && e.finals == nil {
		return
	}
	var end *EndError
	switch {
	case e.outcome == nil:
		for id := range e.joined {
			if !completed[id] {
				w.check.Failf("%s epoch %d: Shutdown succeeded, but %s, which joined, never completed the epoch", p.name, e.epoch, id)
			} else if lostAfter[id] > 0 {
				w.check.Failf("%s epoch %d: Shutdown succeeded, but %s lost %d records published after it joined", p.name, e.epoch, id, lostAfter[id])
			}
		}
	case errors.As(e.outcome, &end):
		for id, n := range end.Lost {
			if lostAfter[id] != n {
				w.check.Failf("%s epoch %d: Shutdown says %s lost %d, its events say %d", p.name, e.epoch, id, n, lostAfter[id])
			}
		}
		for _, id := range end.Unconfirmed {
			if w.byes[byeKey{id, e.epoch}] {
				w.check.Failf("%s epoch %d: Shutdown says %s did not confirm, but its BYE was accepted", p.name, e.epoch, id)
			}
		}
	}
}
