package journal_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/simdisk"
	"github.com/syncmq/syncmq/journal"
)

// faultFS wraps an FS with faults for the segment files it creates: a
// byte quota shared by all of them (a write past it writes what fits and
// fails with ENOSPC, as a full file system does; Truncate gives the space
// back), failing syncs, failing truncates, and failing creation.
type faultFS struct {
	journal.FS
	mu         sync.Mutex
	used       int64
	limit      int64
	failSync   bool
	failTrunc  bool
	failCreate error
}

type faultFile struct {
	journal.File
	d    *faultFS
	size int64
}

// OpenFile applies the faults to segment files being created (by the
// writer); other files, and segments opened to be read or scanned, are
// the wrapped FS's own.
func (d *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (journal.File, error) {
	if !strings.HasSuffix(name, ".log") || flag&os.O_CREATE == 0 {
		return d.FS.OpenFile(name, flag, perm)
	}
	d.mu.Lock()
	err := d.failCreate
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	f, err := d.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, d: d}, nil
}

func (d *faultFS) set(f func(d *faultFS)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	room := f.d.limit - f.d.used
	if room >= int64(len(p)) {
		n, err := f.File.Write(p)
		f.d.used += int64(n)
		f.size += int64(n)
		return n, err
	}
	n, _ := f.File.Write(p[:max(room, 0)])
	f.d.used += int64(n)
	f.size += int64(n)
	return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
}

func (f *faultFile) Truncate(size int64) error {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if f.d.failTrunc {
		return &os.PathError{Op: "truncate", Path: "segment", Err: syscall.EIO}
	}
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	f.d.used -= f.size - size
	f.size = size
	return nil
}

func (f *faultFile) Sync() error {
	f.d.mu.Lock()
	fail := f.d.failSync
	f.d.mu.Unlock()
	if fail {
		return &os.PathError{Op: "fsync", Path: "segment", Err: syscall.EIO}
	}
	return f.File.Sync()
}

// TestDiskFull fills a quota at many different points (inside a record,
// inside a segment header while rolling, between records): Append fails
// with ENOSPC, nothing appended before is lost, the journal is not
// failed, and once space is back the same batch appends and the journal
// reopens whole. On the simulated disk it also fills the disk's own
// capacity, which every file counts (JOURNAL, its temporary copy,
// snapshots), so the disk fills in other places too.
func TestDiskFull(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		for limit := int64(300); limit < 12000; limit += 397 {
			d := &faultFS{FS: x.FS, limit: limit}
			diskFullAt(t, x.dir(t), d, limit, func() { d.set(func(d *faultFS) { d.limit = 1 << 30 }) })
		}
		if x.disk == nil {
			return
		}
		for limit := int64(76); limit < 12000; limit += 211 { // Open needs 76: JOURNAL and a segment header
			d := simdisk.New()
			d.SetCapacity(limit)
			diskFullAt(t, "/j", d, limit, func() { d.SetCapacity(simdisk.Unlimited) })
		}
	})
}

func diskFullAt(t *testing.T, dir string, fsys journal.FS, limit int64, makeRoom func()) {
	t.Helper()
	cfg := testConfig()
	cfg.SegmentBytes = journal.MinSegmentBytes
	cfg.FS = fsys
	j, err := journal.Open(dir, cfg)
	if err != nil {
		t.Fatalf("limit %d: Open: %v", limit, err)
	}
	var acked uint64
	var failed error
	for seq := uint64(1); seq <= 200; seq++ {
		if err := j.Append(frames(1, "a", seq, 1, 90)); err != nil {
			failed = err
			break
		}
		acked = seq
	}
	if !errors.Is(failed, syscall.ENOSPC) {
		t.Fatalf("limit %d: want ENOSPC, got %v after %d", limit, failed, acked)
	}
	if st := j.Stats(); st.Failed || st.AppendErrors != 1 {
		t.Fatalf("limit %d: stats %+v", limit, st)
	}
	rs, rng := readAll(t, j, 1, "a")
	if !slices.Equal(seqs(rs), span(1, acked)) || rng.Final != acked {
		t.Fatalf("limit %d: after ENOSPC holds %d records, range %+v, acked %d", limit, len(rs), rng, acked)
	}
	// Still full: the same error again, nothing changes.
	if err := j.Append(frames(1, "a", acked+1, 1, 90)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("limit %d: second try %v", limit, err)
	}
	makeRoom()
	for seq := acked + 1; seq <= acked+5; seq++ {
		mustAppend(t, j, frames(1, "a", seq, 1, 90))
	}
	must(t, j.Close())

	j2 := open(t, dir, cfg)
	rs, _ = readAll(t, j2, 1, "a")
	if !slices.Equal(seqs(rs), span(1, acked+5)) {
		t.Fatalf("limit %d: reopened holds %v", limit, seqs(rs))
	}
	checkPayloads(t, "a", rs, 90)
	if st := j2.Stats(); st.TornTails != 0 || st.Corrupt != 0 {
		t.Fatalf("limit %d: reopen found damage: %+v", limit, st)
	}
	must(t, j2.Close())
}

// TestDiskFullAppendAll checks that a failed AppendAll reports what went
// in: the batches before the failed write.
func TestDiskFullAppendAll(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		cfg := x.config()
		cfg.FS = &faultFS{FS: x.FS, limit: 5000}
		j, err := journal.Open(x.dir(t), cfg)
		must(t, err)
		defer j.Close()
		var fs []envelope.Frames
		for seq := uint64(1); seq <= 100; seq++ {
			fs = append(fs, frames(1, "a", seq, 1, 90))
		}
		n, err := j.AppendAll(fs)
		if !errors.Is(err, syscall.ENOSPC) || n != 0 {
			// One write for all: it fails whole and is undone.
			t.Fatalf("AppendAll = %d, %v", n, err)
		}
		n, err = j.AppendAll(fs[:10])
		if err != nil || n != 10 {
			t.Fatalf("AppendAll = %d, %v", n, err)
		}
		if rs, _ := readAll(t, j, 1, "a"); len(rs) != 10 {
			t.Fatalf("%d records", len(rs))
		}
	})
}

// TestSegmentCreateFails makes creating the next segment fail (a read-only
// or full file system): the append fails, the journal has no active
// segment, and the next append creates one.
func TestSegmentCreateFails(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		d := &faultFS{FS: x.FS, limit: 1 << 30}
		cfg := x.config()
		cfg.SegmentBytes = journal.MinSegmentBytes
		cfg.FS = d
		dir := x.dir(t)
		j, err := journal.Open(dir, cfg)
		must(t, err)
		defer j.Close()
		var seq uint64
		for seq = 1; len(x.segments(t, dir)) < 2; seq++ {
			mustAppend(t, j, frames(1, "a", seq, 1, 500))
		}
		d.set(func(d *faultFS) { d.failCreate = &os.PathError{Op: "open", Path: "segment", Err: syscall.EROFS} })
		var err2 error
		for ; err2 == nil; seq++ {
			err2 = j.Append(frames(1, "a", seq, 1, 500))
		}
		seq--
		if !errors.Is(err2, syscall.EROFS) {
			t.Fatalf("got %v", err2)
		}
		if err := j.Append(frames(1, "a", seq, 1, 500)); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("retry: %v", err)
		}
		d.set(func(d *faultFS) { d.failCreate = nil })
		mustAppend(t, j, frames(1, "a", seq, 1, 500))
		if rs, _ := readAll(t, j, 1, "a"); !slices.Equal(seqs(rs), span(1, seq)) {
			t.Fatalf("holds %v, want 1..%d", seqs(rs), seq)
		}
	})
}

// TestSyncFailureFailsJournal makes fsync fail under SyncAlways: the
// append reports it, the journal refuses appends from then on (after a
// failed fsync the kernel may have dropped the dirty pages, so nothing
// written since the last good sync can be trusted), reads go on, and a
// reopen recovers.
func TestSyncFailureFailsJournal(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		d := &faultFS{FS: x.FS, limit: 1 << 30}
		cfg := x.config()
		cfg.Sync = journal.SyncAlways
		cfg.FS = d
		dir := x.dir(t)
		j, err := journal.Open(dir, cfg)
		must(t, err)
		for seq := uint64(1); seq <= 3; seq++ {
			mustAppend(t, j, frames(1, "a", seq, 1, -1))
		}
		d.set(func(d *faultFS) { d.failSync = true })
		if err := j.Append(frames(1, "a", 4, 1, -1)); !errors.Is(err, journal.ErrFailed) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("got %v", err)
		}
		if err := j.Append(frames(1, "a", 4, 1, -1)); !errors.Is(err, journal.ErrFailed) {
			t.Fatalf("after failure: %v", err)
		}
		if st := j.Stats(); !st.Failed || st.SyncErrors != 1 {
			t.Fatalf("stats %+v", st)
		}
		if rs, _ := readAll(t, j, 1, "a"); !slices.Equal(seqs(rs), span(1, 3)) {
			t.Fatalf("reads after failure: %v", seqs(rs))
		}
		must(t, j.Close())
		j2 := open(t, dir, x.config())
		rs, _ := readAll(t, j2, 1, "a")
		// Seq 4 reached the file before its fsync failed; it may be kept.
		if got := seqs(rs); !slices.Equal(got, span(1, 3)) && !slices.Equal(got, span(1, 4)) {
			t.Fatalf("reopened: %v", got)
		}
		mustAppend(t, j2, frames(2, "a", 1, 1, -1))
	})
}

// TestUndoFailureFailsJournal makes both the write and the truncate that
// would undo it fail: the journal fails, and a reopen cuts the partial
// record as a torn tail.
func TestUndoFailureFailsJournal(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		d := &faultFS{FS: x.FS, limit: 1 << 30}
		cfg := x.config()
		cfg.FS = d
		dir := x.dir(t)
		j, err := journal.Open(dir, cfg)
		must(t, err)
		mustAppend(t, j, frames(1, "a", 1, 1, 100))
		d.set(func(d *faultFS) { d.limit = d.used + 50; d.failTrunc = true })
		if err := j.Append(frames(1, "a", 2, 1, 100)); !errors.Is(err, journal.ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("got %v", err)
		}
		j.Crash()
		j2 := open(t, dir, x.config())
		rs, _ := readAll(t, j2, 1, "a")
		if !slices.Equal(seqs(rs), []uint64{1}) {
			t.Fatalf("got %v", seqs(rs))
		}
		if st := j2.Stats(); st.TornTails != 1 || st.TornBytes != 50 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) { openErrors(t, x) })
}

func openErrors(t *testing.T, x testFS) {
	t.Run("missing parent", func(t *testing.T) {
		_, err := journal.Open(filepath.Join(x.dir(t), "no", "such"), x.config())
		if !errors.Is(err, journal.ErrDirectory) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("creates the leaf directory", func(t *testing.T) {
		dir := filepath.Join(x.dir(t), "new")
		j := open(t, dir, x.config())
		if j.Publisher() != testPub {
			t.Fatal("publisher")
		}
	})
	t.Run("file instead of directory", func(t *testing.T) {
		p := filepath.Join(x.dir(t), "f")
		x.write(t, p, []byte("x"))
		if _, err := journal.Open(p, x.config()); !errors.Is(err, journal.ErrDirectory) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other publisher", func(t *testing.T) {
		dir := x.dir(t)
		must(t, open(t, dir, x.config()).Close())
		cfg := x.config()
		cfg.Publisher = envelope.ID{9}
		_, err := journal.Open(dir, cfg)
		if !errors.Is(err, journal.ErrPublisher) {
			t.Fatalf("got %v", err)
		}
		t.Log(err)
	})
	t.Run("zero publisher adopts the directory's", func(t *testing.T) {
		dir := x.dir(t)
		must(t, open(t, dir, x.config()).Close())
		cfg := x.config()
		cfg.Publisher = envelope.ID{}
		if j := open(t, dir, cfg); j.Publisher() != testPub {
			t.Fatalf("publisher %s", j.Publisher())
		}
	})
	t.Run("locked", func(t *testing.T) {
		dir := x.dir(t)
		open(t, dir, x.config())
		if _, err := journal.Open(dir, x.config()); !errors.Is(err, journal.ErrLocked) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("damaged JOURNAL file", func(t *testing.T) {
		dir := x.dir(t)
		must(t, open(t, dir, x.config()).Close())
		p := filepath.Join(dir, "JOURNAL")
		b := x.read(t, p)
		b[20] ^= 1
		x.write(t, p, b)
		if _, err := journal.Open(dir, x.config()); !errors.Is(err, journal.ErrDirectory) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("segments without JOURNAL file", func(t *testing.T) {
		dir := x.dir(t)
		j := open(t, dir, x.config())
		mustAppend(t, j, frames(1, "a", 1, 1, -1))
		must(t, j.Close())
		must(t, x.Remove(filepath.Join(dir, "JOURNAL")))
		if _, err := journal.Open(dir, x.config()); !errors.Is(err, journal.ErrDirectory) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		cfg := x.config()
		cfg.SegmentBytes = 10
		if _, err := journal.Open(x.dir(t), cfg); !errors.Is(err, journal.ErrConfig) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("read-only directory", func(t *testing.T) {
		dir := x.dir(t)
		must(t, open(t, dir, x.config()).Close())
		if x.disk != nil {
			// A file system remounted read-only.
			x.disk.SetReadOnly(true)
			defer x.disk.SetReadOnly(false)
			if _, err := journal.Open(dir, x.config()); !errors.Is(err, journal.ErrDirectory) || !errors.Is(err, syscall.EROFS) {
				t.Fatalf("got %v", err)
			}
			return
		}
		must(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		if os.Geteuid() != 0 {
			if _, err := journal.Open(dir, testConfig()); !errors.Is(err, journal.ErrDirectory) || !errors.Is(err, os.ErrPermission) {
				t.Fatalf("got %v", err)
			}
			return
		}
		// Root ignores permission bits: open it from a process running
		// as nobody.
		got := openAsNobody(t, dir)
		t.Log(got)
		if !strings.Contains(got, "is not writable") || !strings.Contains(got, "permission denied") {
			t.Fatalf("Open as nobody: %q", got)
		}
	})
}

// openChildEnv names a journal directory a child process (this test
// binary) opens, printing the error.
const openChildEnv = "SYNCMQ_JOURNAL_TEST_OPEN"

func openAndReport(dir string) int {
	j, err := journal.Open(dir, testConfig())
	if err == nil {
		j.Close()
		fmt.Println("opened")
		return 0
	}
	fmt.Println(err)
	return 0
}

// openAsNobody runs Open on dir in a copy of this test binary running as
// user nobody and returns what it printed. The copy and dir's parents
// are made reachable for that user.
func openAsNobody(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "journal.test")
	self, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, self, 0o755))
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
		must(t, os.Chmod(d, 0o755))
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), openChildEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}
