//go:build !linux

package recovery

// mapSlab allocates a slab on the Go heap where this package does not map
// memory itself.
func mapSlab() (slab, mapping []byte) { return make([]byte, slabSize), nil }

func unmapSlab([]byte) {}

// HistoryOffHeap reports whether a History keeps its records outside the
// Go heap (false here: slabs are Go memory), so that a soft memory limit
// for the Go runtime must count them.
const HistoryOffHeap = false
