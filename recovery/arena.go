package recovery

import "math/bits"

// arena hands out the History's chunks and takes them back. Chunks of the
// size classes minChunk..maxChunk are pieces of blocks of maxChunk bytes,
// one class per block, and blocks are cut from slabs of slabSize bytes.
// A piece given back is reused by the next chunk of its class, and a
// block whose pieces are all back is reused by any class, so once the
// History holds its budget it allocates nothing: retaining a batch
// writes into memory that is already mapped and warm.
//
// Slabs come from outside the Go heap where the platform allows it
// (mapSlab): the History's memory is long-lived and holds no pointers, so
// in the heap it would only raise the garbage collector's target (by
// default the heap may grow to twice the live data before a cycle) and
// let chunks dropped in the meantime be replaced by fresh memory. On
// Linux slabs are aligned to and advised for transparent huge pages:
// first touching a slab costs one page fault, not 512, which matters on
// virtual machines, where a fault costs several microseconds.
//
// The arena maps at most maxSlabs slabs; past that (fragmentation: pieces
// of small classes spread over many blocks) chunks come from the Go heap.
// It is not safe for concurrent use: the History's lock guards it.
type arena struct {
	slabs    [][]byte
	mappings [][]byte // for unmapSlab
	maxSlabs int
	blocks   []arenaBlock // by block number: slab*blocksPerSlab + block
	free     []int32      // blocks with no piece in use
	partial  [classes][]int32
	heap     int // chunks handed out from the Go heap, for tests
}

// arenaBlock is the state of one block.
type arenaBlock struct {
	class   int8   // -1 while free
	used    uint8  // pieces in use
	pieces  uint16 // bit i set: piece i is in use
	partial int32  // index in arena.partial[class], -1 if not there
}

const (
	slabSize      = 2 << 20
	blocksPerSlab = slabSize / maxChunk
)

// classes are the chunk sizes minChunk, 2*minChunk, ... maxChunk.
const classes = 5

// class returns the class of a chunk of n bytes, or -1 for a size that
// is not one.
func class(n int) int {
	k := 0
	for c := minChunk; c <= maxChunk; c *= 2 {
		if c == n {
			return k
		}
		k++
	}
	return -1
}

func newArena(maxBytes int64) *arena {
	// The budget, plus a block per class for partly used blocks, plus a
	// slab for rounding.
	n := int((maxBytes+classes*maxChunk)/slabSize) + 1
	return &arena{maxSlabs: n}
}

// chunk is a chunk the arena handed out: its bytes and, when they are a
// piece of a block, where.
type chunk struct {
	b     []byte
	block int32 // -1: from the Go heap
	piece uint8
}

// alloc returns a chunk of n bytes, a class size or larger.
func (a *arena) alloc(n int) chunk {
	k := class(n)
	if k < 0 {
		a.heap++
		return chunk{b: make([]byte, n), block: -1}
	}
	if len(a.partial[k]) == 0 && !a.newPartial(k) {
		a.heap++
		return chunk{b: make([]byte, n), block: -1}
	}
	p := a.partial[k]
	id := p[len(p)-1]
	bl := &a.blocks[id]
	i := bits.TrailingZeros16(^bl.pieces)
	bl.pieces |= 1 << i
	bl.used++
	if int(bl.used) == maxChunk/n {
		a.unpartial(id)
	}
	off := int(id%blocksPerSlab)*maxChunk + i*n
	s := a.slabs[id/blocksPerSlab]
	return chunk{b: s[off : off+n : off+n], block: id, piece: uint8(i)}
}

// newPartial gives class k a free block, mapping a slab if it must, and
// reports whether it could.
func (a *arena) newPartial(k int) bool {
	if len(a.free) == 0 {
		if len(a.slabs) >= a.maxSlabs {
			return false
		}
		s, m := mapSlab()
		if s == nil {
			return false
		}
		base := int32(len(a.slabs)) * blocksPerSlab
		a.slabs, a.mappings = append(a.slabs, s), append(a.mappings, m)
		for range blocksPerSlab {
			a.blocks = append(a.blocks, arenaBlock{class: -1, partial: -1})
		}
		for i := int32(blocksPerSlab) - 1; i >= 0; i-- {
			a.free = append(a.free, base+i) // the lowest is taken first
		}
	}
	id := a.free[len(a.free)-1]
	a.free = a.free[:len(a.free)-1]
	a.blocks[id] = arenaBlock{class: int8(k), partial: int32(len(a.partial[k]))}
	a.partial[k] = append(a.partial[k], id)
	return true
}

// unpartial takes block id off its class's list of blocks with a free
// piece.
func (a *arena) unpartial(id int32) {
	bl := &a.blocks[id]
	p := a.partial[bl.class]
	last := p[len(p)-1]
	p[bl.partial] = last
	a.blocks[last].partial = bl.partial
	a.partial[bl.class] = p[:len(p)-1]
	bl.partial = -1
}

// release takes back a chunk alloc handed out.
func (a *arena) release(c chunk) {
	if c.block < 0 {
		return // the garbage collector's
	}
	bl := &a.blocks[c.block]
	if bl.partial < 0 {
		bl.partial = int32(len(a.partial[bl.class]))
		a.partial[bl.class] = append(a.partial[bl.class], c.block)
	}
	bl.pieces &^= 1 << c.piece
	bl.used--
	if bl.used == 0 {
		a.unpartial(c.block)
		bl.class = -1
		a.free = append(a.free, c.block)
	}
}

// mapped returns the bytes of slabs mapped.
func (a *arena) mapped() int64 { return int64(len(a.slabs)) * slabSize }

// close unmaps every slab. No chunk may be used afterwards.
func (a *arena) close() {
	for _, m := range a.mappings {
		unmapSlab(m)
	}
	a.slabs, a.mappings, a.blocks, a.free = nil, nil, nil, nil
	a.partial = [classes][]int32{}
}
