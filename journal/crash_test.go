package journal_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/journal"
)

func TestCrashKeepsEverythingAppended(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	j := open(t, dir, cfg)
	for seq := uint64(1); seq <= 50; seq++ {
		mustAppend(t, j, frames(3, "a", seq, 1, -1))
	}
	j.Crash()
	j2 := open(t, dir, cfg)
	rs, rng := readAll(t, j2, 3, "a")
	if !slices.Equal(seqs(rs), span(1, 50)) {
		t.Fatalf("got %v", seqs(rs))
	}
	checkPayloads(t, "a", rs, -1)
	if want := (journal.Range{Known: true, First: 1, Last: 50, Final: 50, Closed: true}); rng != want {
		t.Fatalf("range %+v, want %+v", rng, want)
	}
	if st := j2.Stats(); st.TornTails != 0 || st.Corrupt != 0 || st.Scanned != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// crashedSegment writes a small journal of two interleaved streams,
// abandons it, and returns its directory, the segment file's bytes and
// the end offset of every record in it.
func crashedSegment(t *testing.T, batches int) (dir string, seg []byte, ends []int) {
	t.Helper()
	dir = t.TempDir()
	cfg := testConfig()
	cfg.Sync = journal.SyncNever
	j := open(t, dir, cfg)
	for _, b := range crashedBatches(batches) {
		mustAppend(t, j, frames(1, b.topic, b.seq, b.count, -1))
	}
	j.Crash()
	segs := segments(t, dir)
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	seg, err := os.ReadFile(segs[0])
	must(t, err)
	off := journal.SegHeaderSize
	for off < len(seg) {
		_, n, err := journal.DecodeRecord(seg[off:], testPub)
		must(t, err)
		off += n
		ends = append(ends, off)
	}
	return dir, seg, ends
}

// recordsOf reads both streams of crashedSegment's journal.
func recordsOf(t *testing.T, j *journal.Journal) (a, b []rec) {
	a, _ = readAll(t, j, 1, "a")
	b, _ = readAll(t, j, 1, "bb")
	checkPayloads(t, "a", a, -1)
	checkPayloads(t, "bb", b, -1)
	return a, b
}

// TestTornTailAtEveryOffset cuts the segment at every byte and reopens:
// the records wholly before the cut are kept, the rest is cut off and
// counted, and the journal takes appends again.
func TestTornTailAtEveryOffset(t *testing.T) {
	src, seg, ends := crashedSegment(t, 12)
	cfg := testConfig()
	cfg.Sync = journal.SyncNever
	meta, err := os.ReadFile(filepath.Join(src, "JOURNAL"))
	must(t, err)
	root := t.TempDir()
	for cut := 0; cut <= len(seg); cut++ {
		dir := filepath.Join(root, fmt.Sprint(cut))
		must(t, os.Mkdir(dir, 0o750))
		must(t, os.WriteFile(filepath.Join(dir, "JOURNAL"), meta, 0o640))
		segPath := filepath.Join(dir, filepath.Base(segments(t, src)[0]))
		must(t, os.WriteFile(segPath, seg[:cut], 0o640))

		j, err := journal.Open(dir, cfg)
		if err != nil {
			t.Fatalf("cut %d: Open: %v", cut, err)
		}
		kept := 0 // records wholly before the cut
		for kept < len(ends) && ends[kept] <= cut {
			kept++
		}
		checkPrefix(t, j, 12, kept)
		boundary := cut <= journal.SegHeaderSize || (kept > 0 && ends[kept-1] == cut)
		st := j.Stats()
		if boundary != (st.TornTails == 0) {
			t.Fatalf("cut %d: torn tails %d, boundary %v", cut, st.TornTails, boundary)
		}
		if !boundary {
			validEnd := journal.SegHeaderSize
			if kept > 0 {
				validEnd = ends[kept-1]
			}
			if st.TornBytes != int64(cut-validEnd) {
				t.Fatalf("cut %d: torn bytes %d, want %d", cut, st.TornBytes, cut-validEnd)
			}
		}
		if err := j.Append(frames(2, "a", 1, 1, -1)); err != nil {
			t.Fatalf("cut %d: append to a new epoch: %v", cut, err)
		}
		must(t, j.Close())
		must(t, os.RemoveAll(dir))
	}
}

type testBatch struct {
	topic string
	seq   uint64
	count int
}

// crashedBatches returns n batches alternating between topics "a" and
// "bb", of 1 to 3 records each.
func crashedBatches(n int) []testBatch {
	next := map[string]uint64{"a": 1, "bb": 1}
	var out []testBatch
	for i := 1; i <= n; i++ {
		topic := "a"
		if i%2 == 0 {
			topic = "bb"
		}
		b := testBatch{topic, next[topic], 1 + i%3}
		next[topic] += uint64(b.count)
		out = append(out, b)
	}
	return out
}

// checkPrefix fails unless j holds exactly the first kept of
// crashedBatches(n), with their payloads.
func checkPrefix(t *testing.T, j *journal.Journal, n, kept int) {
	t.Helper()
	checkBatches(t, j, crashedBatches(n)[:kept])
}

// checkBatches fails unless j holds exactly the records of want.
func checkBatches(t *testing.T, j *journal.Journal, want []testBatch) {
	t.Helper()
	a, b := recordsOf(t, j)
	var wa, wb []uint64
	for _, x := range want {
		for s := x.seq; s < x.seq+uint64(x.count); s++ {
			if x.topic == "a" {
				wa = append(wa, s)
			} else {
				wb = append(wb, s)
			}
		}
	}
	if !slices.Equal(seqs(a), wa) || !slices.Equal(seqs(b), wb) {
		t.Fatalf("holds a %v bb %v, want a %v bb %v", seqs(a), seqs(b), wa, wb)
	}
}

// TestCloseSealsEverything: an end record too large for the active
// segment makes Close roll; every segment still gets its snapshot, and
// the reopen scans nothing and finds the epoch ended cleanly.
func TestCloseSealsEverything(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = journal.MinSegmentBytes
	j := open(t, dir, cfg)
	for i := range 300 {
		mustAppend(t, j, frames(1, fmt.Sprintf("topic-%03d", i), 1, 1, 8))
	}
	must(t, j.Close())
	for _, p := range segments(t, dir) {
		if _, err := os.Stat(p[:len(p)-len(".log")] + ".idx"); err != nil {
			t.Fatalf("no snapshot for %s: %v", p, err)
		}
	}
	j2 := open(t, dir, cfg)
	st := j2.Stats()
	eps := j2.Epochs()
	if st.Scanned != 0 || len(eps) != 1 || !eps[0].Clean || len(eps[0].Topics) != 300 {
		t.Fatalf("stats %+v, %d epochs", st, len(eps))
	}
	for _, ti := range eps[0].Topics {
		if ti.Final != 1 || ti.Last != 1 {
			t.Fatalf("%+v", ti)
		}
	}
}
