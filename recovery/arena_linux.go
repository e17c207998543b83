package recovery

import (
	"syscall"
	"unsafe"
)

// mapSlab maps slabSize bytes of anonymous memory aligned to slabSize, so
// that they can be one transparent huge page, and advises the kernel to
// make them one. It maps twice that and uses the aligned half: the rest
// is never touched, so it costs address space only. It returns the slab
// and the mapping to pass to unmapSlab, or nil if the kernel refuses.
func mapSlab() (slab, mapping []byte) {
	mem, err := syscall.Mmap(-1, 0, 2*slabSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil
	}
	// The address is only used for arithmetic, never turned back into a
	// pointer.
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(mem))) & (slabSize - 1))
	s := mem[skip : skip+slabSize : skip+slabSize]
	_ = syscall.Madvise(s, syscall.MADV_HUGEPAGE) // a hint: without it, small pages
	return s, mem
}

func unmapSlab(mapping []byte) { _ = syscall.Munmap(mapping) }

// HistoryOffHeap reports whether a History keeps its records outside the
// Go heap (true here: slabs are mapped memory), so that a soft memory
// limit for the Go runtime need not count them.
const HistoryOffHeap = true
