package simdisk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// CrashKind says what a crash takes with it.
type CrashKind uint8

const (
	// ProcessCrash is the end of the process (kill -9, a panic): its
	// handles and locks go, the kernel's page cache and queued metadata
	// stay.
	ProcessCrash CrashKind = iota
	// PowerLoss is the end of the machine: only what was made durable
	// stays, plus what CrashOptions lets survive.
	PowerLoss
)

func (k CrashKind) String() string {
	switch k {
	case ProcessCrash:
		return "process crash"
	case PowerLoss:
		return "power loss"
	}
	return fmt.Sprintf("CrashKind(%d)", uint8(k))
}

// CrashOptions describe a crash.
type CrashOptions struct {
	Kind CrashKind
	// Tear decides, on a PowerLoss, how much of a file's unsynced
	// appended data survives: given the file's path, its durable size and
	// its size in the page cache (written > durable), it returns the size
	// the file has after the crash, which is clamped to [durable,
	// written]. It is called for such files only, in path order. Nil
	// keeps none of it (every file goes back to its durable copy).
	Tear func(path string, durable, written int64) int64
	// Metadata decides, on a PowerLoss, how many of the n queued metadata
	// operations (creations, renames, removals not made durable by a
	// SyncDir) survive: the first k, in the order they were made. It is
	// called once, before Tear; its result is clamped to [0, n]. Nil
	// keeps none.
	Metadata func(n int) int
}

// RandomPowerLoss returns the options of a power loss whose torn writes
// and surviving metadata rng decides: each torn file keeps a uniformly
// chosen number of its unsynced appended bytes (from none to all), and a
// uniformly chosen prefix of the queued metadata operations survives.
func RandomPowerLoss(rng *rand.Rand) CrashOptions {
	return CrashOptions{
		Kind: PowerLoss,
		Tear: func(_ string, durable, written int64) int64 {
			return durable + rng.Int64N(written-durable+1)
		},
		Metadata: func(n int) int { return rng.IntN(n + 1) },
	}
}

// Crash ends the simulated process, and with PowerLoss the machine, as
// opts says (see the package documentation). Every File and lock taken
// before it is dead afterwards.
func (d *Disk) Crash(opts CrashOptions) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	clear(d.locks)
	if opts.Kind != PowerLoss {
		for _, p := range sortedKeys(d.names) {
			d.names[p].open = 0
		}
		d.recount()
		return
	}
	k := 0
	if opts.Metadata != nil && len(d.pending) > 0 {
		k = min(max(opts.Metadata(len(d.pending)), 0), len(d.pending))
	}
	d.commit(k)
	d.pending = d.pending[:0]
	d.names = make(map[string]*node, len(d.durable))
	for p, n := range d.durable {
		d.names[p] = n
	}
	for _, p := range sortedKeys(d.names) {
		n := d.names[p]
		n.open, n.links = 0, 1
		if n.dir {
			continue
		}
		size := int64(len(n.synced))
		if written := int64(len(n.data)); n.appendOnly() && written > size && opts.Tear != nil {
			size = min(max(opts.Tear(p, size, written), size), written)
		}
		// The surviving content: the durable copy plus the torn suffix.
		data := slices.Clone(n.synced)
		if size > int64(len(data)) {
			data = append(data, n.data[len(data):size]...)
		}
		n.data = data
		n.synced = slices.Clone(data)
		n.dirtyFrom = math.MaxInt64
	}
	d.recount()
}

// recount recomputes the bytes used from the files that exist.
func (d *Disk) recount() {
	d.used = 0
	for _, n := range d.names {
		d.used += int64(len(n.data))
	}
}

// FlipBit flips bit (0-7) of the byte at off of file name's durable copy,
// as damage on the medium does; the page cache flips too if it holds that
// byte as synced. It fails if the file does not exist or off is not
// durable.
func (d *Disk) FlipBit(name string, off int64, bit uint) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flipLocked(clean(name), off, bit)
}

func (d *Disk) flipLocked(name string, off int64, bit uint) error {
	n, ok := d.names[name]
	switch {
	case !ok || n.dir:
		return fmt.Errorf("simdisk: flip a bit of %s: no such file", name)
	case off < 0 || off >= int64(len(n.synced)):
		return fmt.Errorf("simdisk: flip a bit of %s: offset %d outside its %d durable bytes", name, off, len(n.synced))
	case bit > 7:
		return fmt.Errorf("simdisk: flip bit %d: a byte has bits 0 to 7", bit)
	}
	n.synced[off] ^= 1 << bit
	if off < n.dirtyFrom && off < int64(len(n.data)) {
		n.data[off] ^= 1 << bit
	}
	return nil
}

// FlipRandomBit flips one bit chosen uniformly by rng among the durable
// bytes of every file whose path is accepted by match (nil: all files)
// and reports which; ok is false if there is no durable byte to flip.
func (d *Disk) FlipRandomBit(rng *rand.Rand, match func(path string) bool) (path string, off int64, bit uint, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var paths []string
	var total int64
	for _, p := range sortedKeys(d.names) {
		if n := d.names[p]; !n.dir && len(n.synced) > 0 && (match == nil || match(p)) {
			paths = append(paths, p)
			total += int64(len(n.synced))
		}
	}
	if total == 0 {
		return "", 0, 0, false
	}
	at := rng.Int64N(total)
	for _, p := range paths {
		if size := int64(len(d.names[p].synced)); at >= size {
			at -= size
			continue
		}
		path, off = p, at
		break
	}
	bit = uint(rng.IntN(8))
	if err := d.flipLocked(path, off, bit); err != nil {
		panic(err) // unreachable: chosen among durable bytes under the lock
	}
	return path, off, bit, true
}
