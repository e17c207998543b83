package journal_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/journal"
)

func TestCrashKeepsEverythingAppended(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		dir := x.dir(t)
		cfg := x.config()
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
	})
}

// crashedSegment writes a small journal of two interleaved streams,
// abandons it, and returns its directory, the segment file's bytes and
// the end offset of every record in it.
func crashedSegment(t *testing.T, x testFS, batches int) (dir string, seg []byte, ends []int) {
	t.Helper()
	dir = x.dir(t)
	cfg := x.config()
	cfg.Sync = journal.SyncNever
	j := open(t, dir, cfg)
	for _, b := range crashedBatches(batches) {
		mustAppend(t, j, frames(1, b.topic, b.seq, b.count, -1))
	}
	j.Crash()
	segs := x.segments(t, dir)
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	seg = x.read(t, segs[0])
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
	onEachFS(t, func(t *testing.T, x testFS) {
		src, seg, ends := crashedSegment(t, x, 12)
		cfg := x.config()
		cfg.Sync = journal.SyncNever
		meta := x.read(t, filepath.Join(src, "JOURNAL"))
		segName := filepath.Base(x.segments(t, src)[0])
		root := x.dir(t)
		for cut := 0; cut <= len(seg); cut++ {
			dir := filepath.Join(root, fmt.Sprint(cut))
			x.mkdir(t, dir)
			x.write(t, filepath.Join(dir, "JOURNAL"), meta)
			x.write(t, filepath.Join(dir, segName), seg[:cut])

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
			x.removeAll(t, dir)
		}
	})
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
	onEachFS(t, func(t *testing.T, x testFS) {
		dir := x.dir(t)
		cfg := x.config()
		cfg.SegmentBytes = journal.MinSegmentBytes
		j := open(t, dir, cfg)
		for i := range 300 {
			mustAppend(t, j, frames(1, fmt.Sprintf("topic-%03d", i), 1, 1, 8))
		}
		must(t, j.Close())
		for _, p := range x.segments(t, dir) {
			if !x.exists(p[:len(p)-len(".log")] + ".idx") {
				t.Fatalf("no snapshot for %s", p)
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
	})
}
