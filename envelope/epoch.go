package envelope

import "time"

// Epochs name a publisher's incarnations. Protocol 1.0 publishers chose
// the start time in Unix nanoseconds, about 1.8e18 today: above 2^53, so
// JSON parsers that read numbers as doubles (JavaScript's among them)
// corrupt it in the handshake. Protocol 1.1 publishers choose the start
// time in Unix microseconds, below 2^53 until the year 2255.

// MaxJSONEpoch is the largest epoch a double-based JSON parser reads
// exactly, 2^53-1. Epochs a 1.1 publisher chooses stay at or below it;
// only a publisher continuing a 1.0 journal keeps larger ones.
const MaxJSONEpoch = 1<<53 - 1

// EpochAt returns the epoch a publisher starting at t chooses: t in Unix
// microseconds (at least 1).
func EpochAt(t time.Time) uint64 { return uint64(max(t.UnixMicro(), 1)) }

// EpochAfter reports whether epoch a names a later incarnation than b.
// Epochs of one era compare as numbers. Across the change of unit, every
// epoch at or below MaxJSONEpoch (1.1, microseconds) is later than every
// epoch above it (1.0, nanoseconds): a publisher upgraded to 1.1 that
// restarts without a journal picks a smaller number than its 1.0
// incarnation did, and must still be followed, not taken for a stale one.
func EpochAfter(a, b uint64) bool {
	if aNew, bNew := a <= MaxJSONEpoch, b <= MaxJSONEpoch; aNew != bNew {
		return aNew
	}
	return a > b
}
