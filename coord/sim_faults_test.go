package coord

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/syncmq/syncmq/internal/simdisk"
)

// faultRates is how many faults of each kind a run draws: swarm testing,
// each seed also deciding which kinds it exercises and how often, so that
// rare combinations come up without every run being a storm.
type faultRates struct {
	pubCrash, subCrash, stall, partition, reset, slowReader int
}

func drawFaultRates(r *rand.Rand) faultRates {
	n := func(most int) int {
		if r.IntN(2) == 0 {
			return 0
		}
		return r.IntN(most + 1)
	}
	return faultRates{pubCrash: n(2), subCrash: n(3), stall: n(4), partition: n(3), reset: n(4), slowReader: n(2)}
}

func (f faultRates) none() bool { return f == faultRates{} }

// diskFaults is how often the journal's disk fills up (every write that
// needs room fails with ENOSPC for a while) and how many bits of its
// durable segments flip. Only runs with a journal have them.
type diskFaults struct {
	full, flip int
}

func drawDiskFaults(r *rand.Rand) diskFaults {
	n := func(most int) int {
		if r.IntN(2) == 0 {
			return 0
		}
		return r.IntN(most + 1)
	}
	return diskFaults{full: n(2), flip: n(2)}
}

// scheduleDiskFaults draws the disk faults' times and targets from
// w.diskRnd.
func (w *world) scheduleDiskFaults() {
	if !w.params.journal {
		return
	}
	r, window := w.diskRnd, w.params.faultWindow
	at := func() time.Duration { return time.Duration(r.Int64N(int64(window))) }
	pub := func() *simPub { return w.pubs[r.IntN(len(w.pubs))] }
	for range w.params.disk.full {
		p, at, d := pub(), at(), time.Duration(50+r.IntN(6000))*time.Millisecond
		w.sim.After(at, "fault: "+p.name+"'s disk is full", func() { p.fillDisk(d) })
	}
	for range w.params.disk.flip {
		p, at := pub(), at()
		w.sim.After(at, "fault: a bit of "+p.name+"'s journal flips", p.flipBit)
	}
}

// fillDisk makes every write of the journal that needs room fail with
// ENOSPC for d (or until the faults end).
func (sp *simPub) fillDisk(d time.Duration) {
	w := sp.w
	if w.faultsOver || sp.disk == nil {
		return
	}
	used := sp.disk.Used()
	sp.disk.SetCapacity(used)
	sp.fills++
	w.tracef("%s: disk full at %d bytes", sp.name, used)
	w.sim.After(d, sp.name+"'s disk has room again", sp.freeDisk)
}

func (sp *simPub) freeDisk() {
	if sp.disk != nil && sp.disk.Capacity() != simdisk.Unlimited {
		sp.disk.SetCapacity(simdisk.Unlimited)
		sp.w.tracef("%s: disk has room again", sp.name)
	}
}

// flipBit flips one bit of a segment's durable bytes, as damage on the
// medium does. The journal must not serve the record it hit: every
// record is delivered as published or reported lost (the checker holds
// payloads to what was published).
func (sp *simPub) flipBit() {
	w := sp.w
	if w.faultsOver || sp.disk == nil {
		return
	}
	path, off, bit, ok := sp.disk.FlipRandomBit(w.diskRnd, func(p string) bool { return strings.HasSuffix(p, ".log") })
	if !ok {
		return
	}
	sp.damaged = true
	sp.flips++
	w.tracef("%s: bit %d of byte %d of %s flipped", sp.name, bit, off, path)
}

// scheduleFaults draws the fault schedule: each fault at a random time of
// the fault window, against a random node.
func (w *world) scheduleFaults() {
	r, window := w.rnd, w.params.faultWindow
	at := func() time.Duration { return time.Duration(r.Int64N(int64(window))) }
	sub := func() *simSub { return w.subs[r.IntN(len(w.subs))] }
	pub := func() *simPub { return w.pubs[r.IntN(len(w.pubs))] }
	f := w.params.faults
	for range f.pubCrash {
		p := pub()
		w.sim.After(at(), "fault: "+p.name+" crashes", p.crash)
	}
	for range f.subCrash {
		s := sub()
		w.sim.After(at(), "fault: "+s.name+" crashes", s.crash)
	}
	for range f.stall {
		s, d := sub(), time.Duration(50+r.IntN(6000))*time.Millisecond
		w.sim.After(at(), "fault: "+s.name+" stalls", func() { s.stall(d) })
	}
	for range f.partition {
		s, p, d := sub(), pub(), time.Duration(50+r.IntN(6000))*time.Millisecond
		w.sim.After(at(), "fault: partition "+s.name+" | "+p.name, func() { w.partition(s, p, d) })
	}
	for range f.reset {
		s := sub()
		w.sim.After(at(), "fault: reset a connection of "+s.name, func() {
			for _, ep := range s.endpoints() {
				if c := s.conns[ep]; c != nil {
					c.reset("network reset")
					return
				}
			}
		})
	}
	for range f.slowReader {
		s, d := sub(), time.Duration(100+r.IntN(3000))*time.Millisecond
		cost := time.Duration(50+r.IntN(500)) * time.Microsecond
		w.sim.After(at(), "fault: "+s.name+" reads slowly", func() {
			was := w.params.procCost
			w.params.procCost = max(was, cost)
			w.sim.After(d, "", func() { w.params.procCost = was })
		})
	}
	for _, s := range w.subs {
		if s.late {
			w.sim.After(at(), s.name+" starts late", s.start)
		}
	}
	w.scheduleDiskFaults()
}

// partition cuts s off p for d (or until the faults end).
func (w *world) partition(s *simSub, p *simPub, d time.Duration) {
	if w.faultsOver {
		return
	}
	k := pairKey(s.name, p.name)
	w.partitioned[k] = true
	w.sim.After(d, "heal "+s.name+" | "+p.name, func() { w.heal(k) })
}

func (w *world) heal(k [2]string) {
	if !w.partitioned[k] {
		return
	}
	delete(w.partitioned, k)
	for _, p := range w.pubs {
		p.heal()
	}
	for _, s := range w.subs {
		s.heal()
	}
}

// healAll ends every partition: the faults are over.
func (w *world) healAll() {
	for k := range w.partitioned {
		delete(w.partitioned, k)
	}
	for _, p := range w.pubs {
		p.heal()
		p.freeDisk()
	}
	for _, s := range w.subs {
		s.heal()
	}
}

func (w *world) pubAt(endpoint string) *simPub {
	for _, p := range w.pubs {
		if p.endpoints().Pub == endpoint {
			return p
		}
	}
	panic("sim: no publisher at " + endpoint)
}

func (w *world) pubAtSync(endpoint string) *simPub {
	for _, p := range w.pubs {
		if p.endpoints().Sync == endpoint {
			return p
		}
	}
	panic("sim: no publisher at " + endpoint)
}

func (w *world) pubAtRecovery(endpoint string) *simPub {
	for _, p := range w.pubs {
		if p.config().RecoveryBind == endpoint {
			return p
		}
	}
	panic("sim: no recovery endpoint " + endpoint)
}
