//go:build !linux

package recovery

// mapSlab allocates a slab on the Go heap where this package does not map
// memory itself.
func mapSlab() (slab, mapping []byte) { return make([]byte, slabSize), nil }

func unmapSlab([]byte) {}
