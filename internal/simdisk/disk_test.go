package simdisk_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/syncmq/syncmq/internal/simdisk"
	"github.com/syncmq/syncmq/journal"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t testing.TB, d *simdisk.Disk, name string) journal.File {
	t.Helper()
	f, err := d.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	must(t, err)
	return f
}

func write(t testing.TB, f journal.File, s string) {
	t.Helper()
	if n, err := f.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("write %q: %d, %v", s, n, err)
	}
}

// content returns the file's content as a process reads it, or "<none>".
func content(t testing.TB, d *simdisk.Disk, name string) string {
	t.Helper()
	b, err := d.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<none>"
	}
	must(t, err)
	return string(b)
}

var powerLoss = simdisk.CrashOptions{Kind: simdisk.PowerLoss}

// TestPowerLossKeepsWhatWasSynced walks a file through the durability
// steps: a name not synced is lost with its data, however synced; a
// name synced keeps the data last synced; unsynced writes are lost.
func TestPowerLossKeepsWhatWasSynced(t *testing.T) {
	d := simdisk.New()
	must(t, d.Mkdir("/d", 0o750))
	must(t, d.SyncDir("/"))

	f := create(t, d, "/d/f")
	write(t, f, "hello")
	must(t, f.Sync())
	d.Crash(powerLoss)
	if got := content(t, d, "/d/f"); got != "<none>" {
		t.Fatalf("a file whose creation was never synced survived: %q", got)
	}

	f = create(t, d, "/d/f")
	write(t, f, "hello")
	must(t, d.SyncDir("/d"))
	d.Crash(powerLoss)
	if got := content(t, d, "/d/f"); got != "" {
		t.Fatalf("name synced, data not: got %q, want an empty file", got)
	}

	f = create(t, d, "/d/f")
	write(t, f, "hello")
	must(t, f.Sync())
	write(t, f, " world")
	d.Crash(powerLoss)
	if got := content(t, d, "/d/f"); got != "hello" {
		t.Fatalf("got %q, want the synced %q", got, "hello")
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("a handle from before the crash wrote: %v", err)
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("close after the crash: %v", err)
	}
}

// TestProcessCrashKeepsPageCache: a killed process leaves its writes and
// names to the kernel; they are still not durable.
func TestProcessCrashKeepsPageCache(t *testing.T) {
	d := simdisk.New()
	f := create(t, d, "/f")
	write(t, f, "abc")
	d.Crash(simdisk.CrashOptions{Kind: simdisk.ProcessCrash})
	if got := content(t, d, "/f"); got != "abc" {
		t.Fatalf("after a process crash: %q", got)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("the dead process's handle wrote: %v", err)
	}
	if d.Pending() != 1 {
		t.Fatalf("%d metadata operations pending, want the creation", d.Pending())
	}
	d.Crash(powerLoss)
	if got := content(t, d, "/f"); got != "<none>" {
		t.Fatalf("after a later power loss: %q", got)
	}
}

// TestTornWriteAtEveryByte: the unsynced appended suffix survives cut
// where Tear says, for every cut.
func TestTornWriteAtEveryByte(t *testing.T) {
	const synced, unsynced = "0123456789", "abcdefghij"
	for cut := int64(-3); cut <= 25; cut++ {
		d := simdisk.New()
		f := create(t, d, "/f")
		write(t, f, synced)
		must(t, f.Sync())
		must(t, d.SyncDir("/"))
		write(t, f, unsynced)
		calls := 0
		d.Crash(simdisk.CrashOptions{Kind: simdisk.PowerLoss, Tear: func(path string, durable, written int64) int64 {
			calls++
			if path != "/f" || durable != 10 || written != 20 {
				t.Fatalf("Tear(%q, %d, %d)", path, durable, written)
			}
			return cut
		}})
		want := (synced + unsynced)[:min(max(cut, 10), 20)]
		if got := content(t, d, "/f"); got != want || calls != 1 {
			t.Fatalf("cut %d: %q after %d calls, want %q", cut, got, calls, want)
		}
		if b, _ := d.DurableFile("/f"); string(b) != want {
			t.Fatalf("cut %d: the survivor is not durable: %q", cut, b)
		}
	}
}

// TestOverwriteIsNotTorn: a file whose unsynced changes overwrote or cut
// durable bytes goes back to its durable copy whole.
func TestOverwriteIsNotTorn(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f journal.File) error
	}{
		{"truncate", func(f journal.File) error { return f.Truncate(3) }},
		{"truncate and append", func(f journal.File) error {
			if err := f.Truncate(3); err != nil {
				return err
			}
			_, err := f.Write([]byte("XYZXYZXYZ"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := simdisk.New()
			f := create(t, d, "/f")
			write(t, f, "0123456789")
			must(t, f.Sync())
			must(t, d.SyncDir("/"))
			must(t, tc.change(f))
			d.Crash(simdisk.CrashOptions{Kind: simdisk.PowerLoss, Tear: func(string, int64, int64) int64 {
				t.Fatal("Tear called for a file that was not only appended to")
				return 0
			}})
			if got := content(t, d, "/f"); got != "0123456789" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// TestMetadataSurvivesInOrder: a power loss keeps a prefix of the queued
// creations, renames and removals, never a later one without an earlier.
func TestMetadataSurvivesInOrder(t *testing.T) {
	setup := func() *simdisk.Disk {
		d := simdisk.New()
		must(t, d.WriteFile("/old", []byte("old"), 0o640))
		f := create(t, d, "/tmp") // op 1
		write(t, f, "new")
		must(t, f.Sync())
		must(t, f.Close())
		must(t, d.Rename("/tmp", "/old")) // op 2
		must(t, d.Remove("/old"))         // op 3
		return d
	}
	for k, want := range []struct{ old, tmp string }{
		{"old", "<none>"},    // nothing survives
		{"old", "new"},       // the creation
		{"new", "<none>"},    // and the rename
		{"<none>", "<none>"}, // and the removal
	} {
		d := setup()
		if d.Pending() != 3 {
			t.Fatalf("%d pending", d.Pending())
		}
		d.Crash(simdisk.CrashOptions{Kind: simdisk.PowerLoss, Metadata: func(n int) int { return k }})
		if got := (struct{ old, tmp string }{content(t, d, "/old"), content(t, d, "/tmp")}); got != want {
			t.Fatalf("%d operations kept: %+v, want %+v", k, got, want)
		}
	}
}

// TestSyncDirCommitsEarlierOperations: syncing a directory makes its
// operations durable and every one queued before them, not later ones.
func TestSyncDirCommitsEarlierOperations(t *testing.T) {
	d := simdisk.New()
	must(t, d.Mkdir("/a", 0o750))
	must(t, d.Mkdir("/b", 0o750))
	must(t, d.SyncDir("/"))
	must(t, create(t, d, "/a/1").Close())
	must(t, create(t, d, "/b/1").Close())
	must(t, create(t, d, "/a/2").Close())
	must(t, d.SyncDir("/b"))
	if d.Pending() != 1 {
		t.Fatalf("%d pending, want /a/2's creation", d.Pending())
	}
	d.Crash(powerLoss)
	if got := d.Paths(); !slices.Equal(got, []string{".", "/", "/a", "/a/1", "/b", "/b/1"}) {
		t.Fatalf("after the crash: %v", got)
	}
}

// TestCapacity: a write that straddles the capacity writes what fits and
// fails with ENOSPC; overwriting needs no room; truncating, removing and
// raising the capacity give room back; a removed file holds its bytes
// until closed.
func TestCapacity(t *testing.T) {
	d := simdisk.New()
	d.SetCapacity(100)
	f := create(t, d, "/f")
	write(t, f, string(make([]byte, 60)))
	n, err := f.Write(make([]byte, 60))
	var pe *fs.PathError
	if n != 40 || !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &pe) || pe.Path != "/f" {
		t.Fatalf("straddling write: %d, %v", n, err)
	}
	if d.Used() != 100 {
		t.Fatalf("used %d", d.Used())
	}
	if n, err := f.Write([]byte("x")); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("full: %d, %v", n, err)
	}
	g, err := d.OpenFile("/f", os.O_WRONLY, 0)
	must(t, err)
	write(t, g, "overwrite in place")
	must(t, g.Close())
	must(t, f.Truncate(90))
	write(t, f, "0123456789")
	d.SetCapacity(50)
	if _, err := f.Write([]byte("x")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("capacity below use: %v", err)
	}
	must(t, d.Remove("/f"))
	if d.Used() != 100 {
		t.Fatalf("a removed open file's bytes were freed early: used %d", d.Used())
	}
	must(t, f.Close())
	if d.Used() != 0 {
		t.Fatalf("used %d after the last close", d.Used())
	}
	d.SetCapacity(simdisk.Unlimited)
	h := create(t, d, "/h")
	write(t, h, string(make([]byte, 1000)))
}

// TestFlipBit: damage to the durable copy reaches reads where the page
// cache held the synced byte, not where it holds a newer one, which the
// next sync writes over the flip.
func TestFlipBit(t *testing.T) {
	d := simdisk.New()
	f := create(t, d, "/f")
	write(t, f, "aaaa")
	must(t, f.Sync())
	must(t, d.SyncDir("/"))
	if err := d.FlipBit("/f", 4, 0); err == nil {
		t.Fatal("flipped a byte that is not durable")
	}
	must(t, d.FlipBit("/f", 1, 0)) // 'a' ^ 1 = '`'
	if got := content(t, d, "/f"); got != "a`aa" {
		t.Fatalf("got %q", got)
	}
	g, err := d.OpenFile("/f", os.O_WRONLY, 0)
	must(t, err)
	write(t, g, "bbb")
	must(t, d.FlipBit("/f", 2, 1)) // durable 'a'^2 = 'c'; the cache holds 'b'
	if got := content(t, d, "/f"); got != "bbba" {
		t.Fatalf("got %q", got)
	}
	d.Crash(powerLoss)
	if got := content(t, d, "/f"); got != "a`ca" {
		t.Fatalf("after power loss: %q", got)
	}

	// FlipRandomBit picks among durable bytes, the same for the same seed.
	flips := func(seed uint64) []string {
		d := simdisk.New()
		for i, s := range []string{"x", "yy", "zzzz"} {
			must(t, d.WriteFile(fmt.Sprintf("/%d", i), []byte(s), 0o640))
		}
		rng := rand.New(rand.NewPCG(seed, 1))
		var out []string
		for range 20 {
			p, off, bit, ok := d.FlipRandomBit(rng, nil)
			if !ok {
				t.Fatal("nothing to flip")
			}
			out = append(out, fmt.Sprintf("%s:%d:%d", p, off, bit))
		}
		return out
	}
	if a, b := flips(7), flips(7); !slices.Equal(a, b) {
		t.Fatalf("same seed, different flips:\n%v\n%v", a, b)
	}
	if _, _, _, ok := simdisk.New().FlipRandomBit(rand.New(rand.NewPCG(1, 1)), nil); ok {
		t.Fatal("flipped a bit of an empty disk")
	}
}

// TestLock: one holder at a time; a crash releases.
func TestLock(t *testing.T) {
	d := simdisk.New()
	l, err := d.Lock("/LOCK")
	must(t, err)
	if _, err := d.Lock("/LOCK"); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("second lock: %v", err)
	}
	must(t, l.Close())
	l2, err := d.Lock("/LOCK")
	must(t, err)
	d.Crash(simdisk.CrashOptions{Kind: simdisk.ProcessCrash})
	if _, err := d.Lock("/LOCK"); err != nil {
		t.Fatalf("after a crash: %v", err)
	}
	if err := l2.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("closing a lock the crash released: %v", err)
	}
}

// TestErrors: the errors are those of package os, so errors.Is matches
// what the journal looks for.
func TestErrors(t *testing.T) {
	d := simdisk.New()
	must(t, d.Mkdir("/d", 0o750))
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"open missing", func() error { _, err := d.OpenFile("/d/x", os.O_RDONLY, 0); return err }(), fs.ErrNotExist},
		{"create in missing dir", func() error { _, err := d.OpenFile("/no/x", os.O_CREATE|os.O_WRONLY, 0); return err }(), fs.ErrNotExist},
		{"stat missing", func() error { _, err := d.Stat("/d/x"); return err }(), fs.ErrNotExist},
		{"mkdir missing parent", d.Mkdir("/no/d", 0o750), fs.ErrNotExist},
		{"mkdir existing", d.Mkdir("/d", 0o750), fs.ErrExist},
		{"exclusive create of existing", func() error {
			must(t, d.WriteFile("/d/f", nil, 0o640))
			_, err := d.OpenFile("/d/f", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0)
			return err
		}(), fs.ErrExist},
		{"remove non-empty dir", d.Remove("/d"), syscall.ENOTEMPTY},
		{"rename missing", d.Rename("/d/x", "/d/y"), fs.ErrNotExist},
		{"file as directory", func() error { _, err := d.OpenFile("/d/f/x", os.O_CREATE|os.O_WRONLY, 0); return err }(), syscall.ENOTDIR},
		{"write a read-only handle", func() error {
			f, err := d.OpenFile("/d/f", os.O_RDONLY, 0)
			must(t, err)
			defer f.Close()
			_, err = f.Write([]byte("x"))
			return err
		}(), syscall.EBADF},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	d.SetReadOnly(true)
	if _, err := d.OpenFile("/d/g", os.O_CREATE|os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create on a read-only disk: %v", err)
	}
	if f, err := d.OpenFile("/d/f", os.O_RDONLY, 0); err != nil {
		t.Errorf("read on a read-only disk: %v", err)
	} else {
		f.Close()
	}
}

// TestReadDirAndReadAt: listings are sorted; ReadAt behaves as os.File's.
func TestReadDirAndReadAt(t *testing.T) {
	d := simdisk.New()
	must(t, d.MkdirAll("/a/b", 0o750))
	for _, n := range []string{"c", "a", "b2", "b1"} {
		must(t, d.WriteFile("/a/b/"+n, []byte(n), 0o640))
	}
	ents, err := d.ReadDir("/a/b")
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"a", "b1", "b2", "c"}) {
		t.Fatalf("ReadDir: %v", names)
	}
	f, err := d.OpenFile("/a/b/b1", os.O_RDONLY, 0)
	must(t, err)
	defer f.Close()
	buf := make([]byte, 4)
	if n, err := f.ReadAt(buf, 0); n != 2 || err != io.EOF || string(buf[:n]) != "b1" {
		t.Fatalf("ReadAt: %d %v %q", n, err, buf[:n])
	}
	if n, err := f.ReadAt(buf, 5); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt past the end: %d %v", n, err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 2 || fi.Name() != "b1" || fi.IsDir() {
		t.Fatalf("Stat: %v %v", fi, err)
	}
}

// TestDeterministic runs the same random workload with crashes twice
// from one seed: the disks end byte for byte the same.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64) [32]byte {
		rng := rand.New(rand.NewPCG(seed, seed))
		d := simdisk.New()
		d.SetCapacity(4096)
		must(t, d.Mkdir("/j", 0o750))
		files := map[string]journal.File{}
		for step := range 2000 {
			name := fmt.Sprintf("/j/%d", rng.IntN(8))
			switch op := rng.IntN(10); {
			case op < 4:
				f := files[name]
				if f == nil {
					var err error
					if f, err = d.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640); err != nil {
						continue
					}
					files[name] = f
				}
				f.Write(bytes.Repeat([]byte{byte(step)}, rng.IntN(200)))
			case op < 5:
				if f := files[name]; f != nil {
					f.Sync()
				}
			case op < 6:
				d.SyncDir("/j")
			case op < 7:
				d.Rename(name, fmt.Sprintf("/j/%d", rng.IntN(8)))
			case op < 8:
				d.Remove(name)
			case op < 9:
				if f := files[name]; f != nil {
					f.Truncate(int64(rng.IntN(300)))
				}
			default:
				if rng.IntN(20) == 0 {
					d.Crash(simdisk.RandomPowerLoss(rng))
					clear(files)
				} else if rng.IntN(5) == 0 {
					d.FlipRandomBit(rng, nil)
				}
			}
		}
		h := sha256.New()
		for _, p := range d.Paths() {
			b, _ := d.ReadFile(p)
			fmt.Fprintf(h, "%s %x\n", p, b)
		}
		return [32]byte(h.Sum(nil))
	}
	if a, b := run(42), run(42); a != b {
		t.Fatal("the same seed gave two different disks")
	}
	if run(42) == run(43) {
		t.Fatal("two seeds gave the same disk; the workload decides nothing")
	}
}
