package journal_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/journal"
)

// segRecord is one record of a segment file as laid out on disk.
type segRecord struct {
	off, end   int
	end2       bool   // an epoch-end record
	topic      string // batch records
	first, cnt uint64
}

// layout decodes the records of a segment file's bytes.
func layout(t testing.TB, seg []byte) []segRecord {
	t.Helper()
	var out []segRecord
	for off := journal.SegHeaderSize; off < len(seg); {
		typ, n, err := journal.DecodeRecord(seg[off:], testPub)
		must(t, err)
		r := segRecord{off: off, end: off + n, end2: typ == 2}
		if typ == 1 {
			l := int(seg[off+9])
			h, err := envelope.ParseHeader(seg[off+journal.RecHeadSize+l : off+journal.RecHeadSize+l+envelope.HeaderSize])
			must(t, err)
			r.topic, r.first, r.cnt = string(seg[off+journal.RecHeadSize:off+journal.RecHeadSize+l]), h.Seq, uint64(h.Count)
		}
		out = append(out, r)
		off += n
	}
	return out
}

// closedJournal appends crashedBatches(n) to a new journal and closes it
// cleanly (end record, snapshot), returning its directory and its only
// segment's path.
func closedJournal(t testing.TB, x testFS, n int) (dir, seg string) {
	t.Helper()
	dir = x.dir(t)
	j := open(t, dir, x.config())
	for _, b := range crashedBatches(n) {
		mustAppend(t, j, frames(1, b.topic, b.seq, b.count, -1))
	}
	must(t, j.Close())
	segs := x.segments(t, dir)
	if len(segs) != 1 || !x.exists(segs[0][:len(segs[0])-4]+".idx") {
		t.Fatalf("segments %v, or no snapshot", segs)
	}
	return dir, segs[0]
}

// finals returns the last sequence of each topic of crashedBatches(n).
func finals(n int) map[string]uint64 {
	out := map[string]uint64{}
	for _, b := range crashedBatches(n) {
		out[b.topic] = b.seq + uint64(b.count) - 1
	}
	return out
}

// wantHoles returns, per topic, the holes that the batch records
// accepted by lost make, merged as the journal merges them.
func wantHoles(recs []segRecord, lost func(r segRecord) bool) map[string][]journal.Hole {
	out := map[string][]journal.Hole{}
	for _, r := range recs {
		if r.end2 || !lost(r) {
			continue
		}
		h := journal.Hole{From: r.first, To: r.first + r.cnt - 1}
		if hs := out[r.topic]; len(hs) > 0 && hs[len(hs)-1].To+1 == h.From {
			hs[len(hs)-1].To = h.To
			continue
		}
		out[r.topic] = append(out[r.topic], h)
	}
	return out
}

// checkHoles fails unless j holds, per topic of crashedBatches(n),
// exactly the records not in want's holes, reports Final as appended,
// the epoch as ended cleanly, and the holes as want says.
func checkHoles(t *testing.T, j *journal.Journal, n int, want map[string][]journal.Hole, what string) {
	t.Helper()
	var lost int64
	for topic, final := range finals(n) {
		rs, rng := readAll(t, j, 1, topic)
		checkPayloads(t, topic, rs, -1)
		var wantSeqs []uint64
		for s := uint64(1); s <= final; s++ {
			if !slices.ContainsFunc(want[topic], func(h journal.Hole) bool { return s >= h.From && s <= h.To }) {
				wantSeqs = append(wantSeqs, s)
			}
		}
		if !slices.Equal(seqs(rs), wantSeqs) {
			t.Fatalf("%s: %s holds %v, want %v", what, topic, seqs(rs), wantSeqs)
		}
		if rng.Final != final || !rng.Clean || !rng.Closed {
			t.Fatalf("%s: %s range %+v, want final %d of a clean epoch", what, topic, rng, final)
		}
		var first journal.Hole
		if len(want[topic]) > 0 {
			first = want[topic][0]
		}
		if rng.Hole != first || rng.Holes != len(want[topic]) {
			t.Fatalf("%s: %s range %+v, want first hole %+v of %d", what, topic, rng, first, len(want[topic]))
		}
		for _, h := range want[topic] {
			lost += int64(h.Len())
			// A range that starts inside or after a hole names the hole
			// it overlaps first.
			if got, _ := j.Read(1, topic, h.To, final, nil); got.Hole != h {
				t.Fatalf("%s: %s range from %d names hole %+v, want %+v", what, topic, h.To, got.Hole, h)
			}
		}
	}
	for _, ep := range j.Epochs() {
		for _, ti := range ep.Topics {
			if !slices.Equal(ti.Holes, want[ti.Topic]) {
				t.Fatalf("%s: %s epoch info holes %v, want %v", what, ti.Topic, ti.Holes, want[ti.Topic])
			}
		}
	}
	if st := j.Stats(); st.HoleRecords != lost || st.TornTails != 0 {
		t.Fatalf("%s: stats %+v, want %d records in holes and no torn tail", what, st, lost)
	}
}

// TestTruncatedAfterClose is the reported silent loss: an epoch ended
// cleanly, then its segment was cut short (inside the last records, at
// every byte offset) before the journal was opened again. The journal
// trusts its snapshot: the epoch's final sequences and its clean end
// stand, the batches the cut destroyed are exactly the holes, nothing is
// counted as a torn tail (an interrupted write), and reopening again
// gives the same answer.
func TestTruncatedAfterClose(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		const n = 12
		src, segPath := closedJournal(t, x, n)
		full := x.read(t, segPath)
		recs := layout(t, full)
		if !recs[len(recs)-1].end2 {
			t.Fatal("the segment does not end with the epoch-end record")
		}
		root := x.dir(t)
		cfg := x.config()
		cfg.Sync = journal.SyncNever // no fsync per reopen: the loop reopens hundreds of times
		// From the start of the fourth-last batch record to one byte short.
		for cut := recs[len(recs)-5].off; cut < len(full); cut++ {
			dir := filepath.Join(root, fmt.Sprint(cut))
			x.copyDir(t, src, dir)
			x.truncate(t, filepath.Join(dir, filepath.Base(segPath)), int64(cut))
			want := wantHoles(recs, func(r segRecord) bool { return r.end > cut })
			what := fmt.Sprintf("cut at %d of %d", cut, len(full))
			for reopen := range 2 {
				j, err := journal.Open(dir, cfg)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				// Known at Open, before any read finds the damage.
				var holes int
				var lost int64
				for _, hs := range want {
					holes += len(hs)
					for _, h := range hs {
						lost += int64(h.Len())
					}
				}
				if st := j.Stats(); st.Holes != holes || st.HoleRecords != lost {
					t.Fatalf("%s: at Open %+v, want %d holes of %d records", what, st, holes, lost)
				}
				checkHoles(t, j, n, want, fmt.Sprintf("%s, open %d", what, reopen+1))
				st := j.Stats()
				if st.ShortSegments != 1 || st.ShortBytes != int64(len(full)-cut) || st.Scanned != 0 {
					t.Fatalf("%s: stats %+v", what, st)
				}
				must(t, j.Close())
			}
			if cut == recs[len(recs)-5].off || cut == len(full)-1 {
				j := open(t, dir, cfg)
				mustAppend(t, j, frames(2, "a", 1, 1, -1)) // takes a new epoch
				must(t, j.Close())
			}
			x.removeAll(t, dir)
		}
	})
}

// TestBitFlipAfterCloseAtEveryByte flips one bit of every byte of a
// cleanly closed segment in turn (its snapshot valid, so Open does not
// scan it). A flip in a batch makes exactly that batch a hole, found by
// the first Read and kept for the next ones without counting it twice; a
// flip in the epoch-end record leaves the epoch clean and its finals as
// the snapshot recorded them; no batch is skipped in silence.
func TestBitFlipAfterCloseAtEveryByte(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		const n = 8
		src, segPath := closedJournal(t, x, n)
		full := x.read(t, segPath)
		recs := layout(t, full)
		root := x.dir(t)
		for pos := journal.SegHeaderSize; pos < len(full); pos++ {
			dir := filepath.Join(root, fmt.Sprint(pos))
			x.copyDir(t, src, dir)
			damaged := slices.Clone(full)
			damaged[pos] ^= 1 << (pos % 8)
			x.write(t, filepath.Join(dir, filepath.Base(segPath)), damaged)
			hit := slices.IndexFunc(recs, func(r segRecord) bool { return pos >= r.off && pos < r.end })
			want := wantHoles(recs, func(r segRecord) bool { return r.off == recs[hit].off })
			what := fmt.Sprintf("flip at %d (record %d)", pos, hit)
			cfg := x.config()
			cfg.Sync = journal.SyncNever // no fsync per reopen
			j, err := journal.Open(dir, cfg)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			for range 2 {
				checkHoles(t, j, n, want, what)
			}
			if st := j.Stats(); st.Corrupt != 1 {
				t.Fatalf("%s: corrupt %d, want the one damaged record counted once", what, st.Corrupt)
			}
			must(t, j.Close())
			x.removeAll(t, dir)
		}
	})
}

// TestScanTrustsTheEndRecord: without a snapshot, damage to the last
// batches before an intact epoch-end record is a hole up to the final
// sequences the end record names, not a shorter stream.
func TestScanTrustsTheEndRecord(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		const n = 6
		dir, segPath := closedJournal(t, x, n)
		must(t, x.Remove(segPath[:len(segPath)-4]+".idx"))
		b := x.read(t, segPath)
		recs := layout(t, b)
		// Damage the last batch of each topic: the two records before the end record.
		for _, r := range recs[len(recs)-3 : len(recs)-1] {
			b[r.end-1] ^= 0x01
		}
		x.write(t, segPath, b)
		j := open(t, dir, x.config())
		checkHoles(t, j, n, wantHoles(recs, func(r segRecord) bool { return r.off >= recs[len(recs)-3].off }), "scan")
		if st := j.Stats(); st.Scanned != 1 || st.Corrupt == 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestHolesLeaveWithRetention: a hole goes once retention drops the
// batches around it, as they would have gone undamaged.
func TestHolesLeaveWithRetention(t *testing.T) {
	x := testFS{name: "os", FS: journal.OSFS{}}
	const n = 12
	dir, segPath := closedJournal(t, x, n)
	recs := layout(t, x.read(t, segPath))
	x.truncate(t, segPath, int64(recs[len(recs)-3].off+5)) // the last batch of each topic
	cfg := x.config()
	j := open(t, dir, cfg)
	if st := j.Stats(); st.Holes != 2 {
		t.Fatalf("stats %+v", st)
	}
	must(t, j.Close())
	cfg.Retention.MaxMessages = 1 // only the newest batch of each stream: the damaged one
	j = open(t, dir, cfg)
	for topic, final := range finals(n) {
		if rs, rng := readAll(t, j, 1, topic); len(rs) != 0 || rng.Hole.To != final || rng.Holes != 1 {
			t.Fatalf("%s: %v %+v", topic, seqs(rs), rng)
		}
	}
	// A new epoch pushes the old one out of the global budget.
	must(t, j.Close())
	cfg.Retention = journal.Retention{MaxAge: 1} // everything of epoch 1 is older than a nanosecond
	j = open(t, dir, cfg)
	if st := j.Stats(); st.Holes != 0 || st.HoleRecords != 0 || st.Batches != 0 {
		t.Fatalf("after retention dropped everything: %+v", st)
	}
}

// TestVersion1Snapshot: a snapshot written before end records carried
// their epoch is still used; a segment cut short under it still has its
// holes reported, though a damaged end record cannot mark its epoch.
func TestVersion1Snapshot(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		const n = 6
		dir, segPath := closedJournal(t, x, n)
		idx := segPath[:len(segPath)-4] + ".idx"
		x.write(t, idx, toVersion1(t, x.read(t, idx)))
		recs := layout(t, x.read(t, segPath))
		x.truncate(t, segPath, int64(recs[len(recs)-2].off+7))
		j := open(t, dir, x.config())
		want := wantHoles(recs, func(r segRecord) bool { return r.off >= recs[len(recs)-2].off })
		for topic, final := range finals(n) {
			_, rng := readAll(t, j, 1, topic)
			var first journal.Hole
			if len(want[topic]) > 0 {
				first = want[topic][0]
			}
			if rng.Final != final || rng.Hole != first {
				t.Fatalf("%s: %+v, want final %d, hole %+v", topic, rng, final, first)
			}
		}
		if st := j.Stats(); st.Scanned != 0 || st.ShortSegments != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// toVersion1 rewrites a version 2 snapshot as version 1: the end
// records lose their epochs.
func toVersion1(t testing.TB, b []byte) []byte {
	t.Helper()
	if b[4] != 2 {
		t.Fatalf("snapshot version %d", b[4])
	}
	m := int(binary.BigEndian.Uint32(b[28:]))
	body := slices.Clone(b[:len(b)-4])
	ends := body[len(body)-16*m:]
	out := slices.Clone(body[:len(body)-16*m])
	out[4] = 1
	for i := range m {
		out = append(out, ends[16*i:16*i+8]...)
	}
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
}
