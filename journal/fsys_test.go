package journal_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/syncmq/syncmq/internal/simdisk"
	"github.com/syncmq/syncmq/journal"
)

// testFS is a file system the crash, fault and corruption tests run on:
// real files in temporary directories, or a simulated disk. Its helpers
// set up and inspect directories the way a test needs, outside the
// journal.
type testFS struct {
	name string
	journal.FS
	disk *simdisk.Disk // nil for real files
}

var simDirs atomic.Uint64

// onEachFS runs f as a subtest on real files and on a simulated disk, so
// the journal's behaviour on faults is shown on both and the simulated
// disk is shown to behave as real files do.
func onEachFS(t *testing.T, f func(t *testing.T, x testFS)) {
	t.Helper()
	t.Run("os", func(t *testing.T) { f(t, testFS{name: "os", FS: journal.OSFS{}}) })
	t.Run("simdisk", func(t *testing.T) {
		d := simdisk.New()
		f(t, testFS{name: "simdisk", FS: d, disk: d})
	})
}

// config returns testConfig on this file system.
func (x testFS) config() journal.Config {
	cfg := testConfig()
	cfg.FS = x.FS
	return cfg
}

// dir returns a new empty directory.
func (x testFS) dir(t testing.TB) string {
	t.Helper()
	if x.disk == nil {
		return t.TempDir()
	}
	dir := fmt.Sprintf("/t%d", simDirs.Add(1))
	must(t, x.disk.MkdirAll(dir, 0o750))
	return dir
}

func (x testFS) mkdir(t testing.TB, dir string) {
	t.Helper()
	must(t, x.Mkdir(dir, 0o750))
}

func (x testFS) read(t testing.TB, path string) []byte {
	t.Helper()
	if x.disk != nil {
		b, err := x.disk.ReadFile(path)
		must(t, err)
		return b
	}
	b, err := os.ReadFile(path)
	must(t, err)
	return b
}

// write replaces path's content with b, durably.
func (x testFS) write(t testing.TB, path string, b []byte) {
	t.Helper()
	if x.disk != nil {
		must(t, x.disk.WriteFile(path, b, 0o640))
		return
	}
	must(t, os.WriteFile(path, b, 0o640))
}

func (x testFS) truncate(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := x.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	must(t, f.Truncate(size))
	must(t, f.Close())
}

func (x testFS) exists(path string) bool {
	_, err := x.Stat(path)
	return err == nil
}

// glob lists the files of dir whose names end in suffix, sorted.
func (x testFS) glob(t testing.TB, dir, suffix string) []string {
	t.Helper()
	ents, err := x.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

// segments lists the segment files of dir, sorted.
func (x testFS) segments(t testing.TB, dir string) []string { return x.glob(t, dir, ".log") }

// copyDir copies the files of src but LOCK into a new directory dst.
func (x testFS) copyDir(t testing.TB, src, dst string) {
	t.Helper()
	x.mkdir(t, dst)
	ents, err := x.ReadDir(src)
	must(t, err)
	for _, e := range ents {
		if e.Name() != "LOCK" {
			x.write(t, filepath.Join(dst, e.Name()), x.read(t, filepath.Join(src, e.Name())))
		}
	}
}

// removeAll removes dir and its files.
func (x testFS) removeAll(t testing.TB, dir string) {
	t.Helper()
	ents, err := x.ReadDir(dir)
	must(t, err)
	for _, e := range ents {
		must(t, x.Remove(filepath.Join(dir, e.Name())))
	}
	must(t, x.Remove(dir))
}
