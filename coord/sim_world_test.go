package coord

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/internal/mutation"
	"github.com/syncmq/syncmq/internal/sim"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/journal"
)

// The simulator runs the real publisher (pubCore, the retained store, the
// recovery server's request handling, the shell's passes and end of the
// epoch) and the real subscriber (its state machine and recovery.Stream)
// on one goroutine, on sim's clock, with the sockets replaced by the
// network model below. One seed decides the shape of the job, the pace of
// every peer and every fault. What it does not model is in
// docs/testing.md.

// world is one simulated run: the network, the nodes and the checker.
type world struct {
	sim *sim.Sim
	rnd *rand.Rand
	// diskRnd draws the disk faults, apart from rnd: a run without them
	// replays as it did before they existed.
	diskRnd *rand.Rand
	params  simParams
	check   *invariant.Checker
	pubs    []*simPub
	subs    []*simSub
	nextID  uint64 // connection ids
	// partitioned holds the pairs of nodes that cannot reach each other.
	partitioned map[[2]string]bool
	faultsOver  bool            // the fault schedule ended: liveness is judged from here
	byes        map[byeKey]bool // BYEs the publisher accepted
	topics      []string
	mutation    mutation.Kind
}

// simParams is the shape of one run, drawn from its seed (swarm testing:
// each seed also draws how likely each fault is).
type simParams struct {
	subs, topics, records int
	payloadMax            int
	latency               time.Duration // one way, between any two nodes
	jitter                time.Duration
	sockBuf               int           // bytes in flight per data connection (kernel buffers)
	procCost              time.Duration // a subscriber's time per record
	rate                  float64       // records the producer offers per millisecond
	heartbeat             time.Duration
	repairWindow          time.Duration
	drainTimeout          time.Duration
	maxQueueBytes         int
	queueBytes            int        // the wire's QueueBytes: where catch-up takes a subscriber off the live stream
	slowPolicy            SlowPolicy // catch-up or cut: the simulated socket never waits, so not wait
	slowTimeout           time.Duration
	historyMessages       int
	maxBatchRecords       int
	heldBytes             int64
	startEarliest         bool
	expect                int
	quorumTimeout         time.Duration
	quorumPolicy          QuorumPolicy
	lateJoiners           int // subscribers that start after publishing began
	stateful              bool
	faults                faultRates
	faultWindow           time.Duration // faults happen in [0, faultWindow)
	publishFor            time.Duration // how long the first incarnation takes to publish

	// Drawn from a stream of their own, so that runs drawn before they
	// existed replay the same when they are off.
	journal      bool // the publisher keeps its history in a journal on a simulated disk
	fsync        journal.SyncMode
	segmentBytes int64
	powerLoss    bool // a publisher crash is a power loss half of the time
	rerun        bool // with a journal: after a clean end, the publisher runs again on the same directory
	// Drawn from a stream of their own too, after the journal's part.
	disk diskFaults
}

// drawDurability draws the journal's part of a run.
func drawDurability(p *simParams, r *rand.Rand) {
	p.journal = r.IntN(2) == 0
	p.fsync = journal.SyncMode(r.IntN(3))
	p.segmentBytes = journal.MinSegmentBytes << r.IntN(6)
	p.powerLoss = r.IntN(2) == 0
	p.rerun = r.IntN(3) == 0
}

func drawParams(r *rand.Rand) simParams {
	p := simParams{
		subs:            1 + r.IntN(3),
		topics:          1 + r.IntN(3),
		records:         50 + r.IntN(1500),
		payloadMax:      1 + r.IntN(200),
		latency:         time.Duration(50+r.IntN(2000)) * time.Microsecond,
		sockBuf:         4096 << r.IntN(6),
		procCost:        time.Duration(r.IntN(30)) * time.Microsecond,
		publishFor:      time.Duration(200+r.IntN(8000)) * time.Millisecond,
		heartbeat:       time.Duration(100+r.IntN(900)) * time.Millisecond,
		repairWindow:    time.Duration(1+r.IntN(8)) * time.Second,
		drainTimeout:    time.Duration(20+r.IntN(40)) * time.Second,
		maxQueueBytes:   (16 << 10) << r.IntN(8),
		slowTimeout:     time.Duration(100+r.IntN(900)) * time.Millisecond,
		historyMessages: 100 + r.IntN(3000),
		maxBatchRecords: 1 + r.IntN(64),
		heldBytes:       int64(4096 << r.IntN(8)),
		startEarliest:   r.IntN(3) == 0,
		stateful:        r.IntN(2) == 0,
	}
	p.rate = float64(p.records) / float64(p.publishFor.Milliseconds())
	// Faults fall while the job runs, now and then also around its end.
	p.faultWindow = time.Duration(float64(p.publishFor) * (0.3 + 1.2*r.Float64()))
	p.jitter = p.latency / 2
	p.quorumTimeout = time.Duration(5+r.IntN(25)) * time.Second
	if r.IntN(2) == 0 {
		p.quorumPolicy = QuorumProceed
	}
	p.expect = p.subs
	if r.IntN(3) == 0 {
		p.lateJoiners = 1 + r.IntN(2)
	}
	p.faults = drawFaultRates(r)
	p.queueBytes = max(wire.MinQueueBytes, p.maxQueueBytes>>(1+r.IntN(8)))
	if r.IntN(4) == 0 {
		p.slowPolicy = SlowCut
	}
	return p
}

// newWorld builds a run from its seed.
func newWorld(seed uint64, traceLines int, mut mutation.Kind) *world {
	s := sim.New(seed, traceLines)
	w := &world{sim: s, rnd: s.Rand(), partitioned: make(map[[2]string]bool), mutation: mut, byes: make(map[byeKey]bool)}
	w.params = drawParams(w.rnd)
	drawDurability(&w.params, rand.New(rand.NewPCG(seed, 0x6a6f75726e616c)))
	w.diskRnd = rand.New(rand.NewPCG(seed, 0x6469736b))
	w.params.disk = drawDiskFaults(w.diskRnd)
	w.check = invariant.New(invariant.Options{Expect: w.payload, RedeliverWindow: uint64(w.params.maxBatchRecords)})
	w.pubs = append(w.pubs, newSimPub(w, "pub0"))
	for i := range w.params.subs + w.params.lateJoiners {
		w.subs = append(w.subs, newSimSub(w, fmt.Sprintf("sub%d", i), i >= w.params.subs))
	}
	return w
}

// topic returns the name of topic i.
func (w *world) topic(i int) string {
	for len(w.topics) <= i {
		w.topics = append(w.topics, fmt.Sprintf("t%d", len(w.topics)))
	}
	return w.topics[i]
}

// byeKey names a subscriber's BYE to one epoch.
type byeKey struct {
	sub   string
	epoch uint64
}

// payload is the record seq of stream s: derived from both, so that the
// checker knows what every record must hold.
func (w *world) payload(s invariant.Stream, seq uint64) []byte {
	n := int((seq*2654435761 + uint64(len(s.Topic))*40503 + s.Epoch%1000) % uint64(w.params.payloadMax+1))
	b := fmt.Appendf(nil, "%s/%d/%d/", s.Topic, s.Epoch%100000, seq)
	for len(b) < n {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

// delay is the one-way delay of a message sent now between a and b.
func (w *world) delay() time.Duration {
	d := w.params.latency
	if w.params.jitter > 0 {
		d += time.Duration(w.rnd.Int64N(int64(w.params.jitter)))
	}
	return d
}

func pairKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// reachable reports whether a and b can talk now.
func (w *world) reachable(a, b string) bool { return !w.partitioned[pairKey(a, b)] }

func (w *world) tracef(format string, args ...any) { w.sim.Tracef(format, args...) }

// nonces draws HELLO nonces from the seed.
func (w *world) nonce() (n [envelope.NonceSize]byte) {
	for i := range n {
		n[i] = byte(w.rnd.Uint32())
	}
	return n
}

// run runs the job: the fault schedule, then a quiet period in which
// every subscriber must finish (liveness), then the checks.
func (w *world) run() {
	for _, p := range w.pubs {
		p.start()
	}
	for _, s := range w.subs {
		if !s.late {
			s.start()
		}
	}
	w.scheduleFaults()
	w.sim.After(w.params.faultWindow, "faults over", func() {
		w.faultsOver = true
		w.healAll()
	})
	// Liveness: once faults stop, the job finishes within this bound.
	bound := w.params.faultWindow + w.params.drainTimeout + 2*time.Minute
	steps := 0
	done := w.sim.RunUntil(sim.Start.Add(bound), func() bool {
		if steps++; steps > maxSimSteps {
			return true
		}
		return w.finished()
	})
	if steps > maxSimSteps {
		w.check.Failf("runaway: more than %d events by %v: %s", maxSimSteps, w.sim.Elapsed(), w.pending())
	} else if !done {
		w.check.Failf("liveness: not finished %v after the start (faults stopped at %v): %s", bound, w.params.faultWindow, w.pending())
	}
	w.judge()
}

// maxSimSteps bounds the events of one run: a run that needs more is
// stuck in a loop that does not advance.
const maxSimSteps = 2_000_000

// finished reports whether every publisher ended its job and every
// subscriber that is up is done.
func (w *world) finished() bool {
	for _, p := range w.pubs {
		if !p.done {
			return false
		}
	}
	for _, s := range w.subs {
		if s.up() && !s.finished() || s.run == 0 {
			return false
		}
	}
	return true
}

func (w *world) pending() string {
	var out []string
	for _, p := range w.pubs {
		if !p.done {
			out = append(out, p.status())
		}
	}
	for _, s := range w.subs {
		if s.up() && !s.finished() {
			out = append(out, s.status())
		}
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}
