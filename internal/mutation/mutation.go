// Package mutation plants deliberate bugs in syncmq's code, for tests
// that show the simulator's invariant checker catches them (mutation
// testing, as TigerBeetle does with deliberate faults). Each site asks
// Is(kind); only a binary built with the simmutation tag can answer yes,
// so in every other build the check is a constant false and the compiler
// drops the planted bug with it.
package mutation

// Kind names one planted bug.
type Kind uint8

// The planted bugs.
const (
	None Kind = iota
	// DropLastReplay: the recovery server leaves the last batch of a
	// replay out, and still answers DONE complete.
	DropLastReplay
	// LossOffByOne: the stream reports a loss one record short of its
	// range, and skips the record after it.
	LossOffByOne
	// SkipFsync: the journal acknowledges SyncAlways appends without
	// syncing.
	SkipFsync
	// ForgetHeld: at the held-bytes bound the stream drops its newest held
	// record without making it missing again.
	ForgetHeld
	// OKWithGap: the subscriber reports END as completed while a stream
	// still has a gap.
	OKWithGap
	// HideDamage: a journal Read skips a batch that fails its checks (a
	// flipped bit) without recording it as a hole, so a replay of its
	// range still says complete.
	HideDamage
)

// Kinds lists every planted bug.
var Kinds = []Kind{DropLastReplay, LossOffByOne, SkipFsync, ForgetHeld, OKWithGap, HideDamage}

func (k Kind) String() string {
	switch k {
	case DropLastReplay:
		return "drop-last-replay"
	case LossOffByOne:
		return "loss-off-by-one"
	case SkipFsync:
		return "skip-fsync"
	case ForgetHeld:
		return "forget-held"
	case OKWithGap:
		return "ok-with-gap"
	case HideDamage:
		return "hide-damage"
	}
	return "none"
}

// active is the planted bug of the running test; tests set it with Set.
var active Kind

// Is reports whether the planted bug k is active.
func Is(k Kind) bool { return Enabled && active == k }

// Set activates k (None: none) and returns a function that restores the
// previous one. It panics in a build without the simmutation tag, where
// nothing can be planted.
func Set(k Kind) (restore func()) {
	if !Enabled && k != None {
		panic("mutation: build with -tags simmutation to plant " + k.String())
	}
	prev := active
	active = k
	return func() { active = prev }
}
