package journal_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/journal"
)

// TestBitFlipAtEveryByte flips one bit of every byte of a crashed segment
// in turn and reopens: no panic, every batch delivered is intact (Read
// verifies both checksums), and the damage costs at most the one batch
// it hit. A damaged record is skipped and the scan resumes at the next
// valid record; damage in the last record is indistinguishable from a
// torn write and is cut off as one.
func TestBitFlipAtEveryByte(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		const n = 10
		src, seg, ends := crashedSegment(t, x, n)
		cfg := x.config()
		cfg.Sync = journal.SyncNever
		meta := x.read(t, filepath.Join(src, "JOURNAL"))
		segName := filepath.Base(x.segments(t, src)[0])
		all := crashedBatches(n)
		root := x.dir(t)
		for pos := 0; pos < len(seg); pos++ {
			dir := filepath.Join(root, fmt.Sprint(pos))
			x.mkdir(t, dir)
			x.write(t, filepath.Join(dir, "JOURNAL"), meta)
			damaged := slices.Clone(seg)
			damaged[pos] ^= 1 << (pos % 8)
			x.write(t, filepath.Join(dir, segName), damaged)

			j, err := journal.Open(dir, cfg)
			if err != nil {
				t.Fatalf("flip at %d: Open: %v", pos, err)
			}
			hit := -1 // the record the flip landed in
			for i, end := range ends {
				if pos >= journal.SegHeaderSize && pos < end {
					hit = i
					break
				}
			}
			want := all
			if hit >= 0 {
				want = append(slices.Clone(all[:hit]), all[hit+1:]...)
			}
			checkBatches(t, j, want)
			st := j.Stats()
			if st.Corrupt+st.TornTails == 0 {
				t.Fatalf("flip at %d (record %d) went unnoticed: %+v", pos, hit, st)
			}
			if hit == len(ends)-1 && st.TornTails != 1 {
				t.Fatalf("flip in the last record should be cut as a torn tail: %+v", st)
			}
			must(t, j.Close())
			x.removeAll(t, dir)
		}
	})
}

// TestDamageAfterSnapshot damages a sealed segment that has a valid index
// snapshot, so Open does not scan it: Read still catches the damaged
// batch, skips it and counts it.
func TestDamageAfterSnapshot(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		dir := x.dir(t)
		cfg := x.config()
		j := open(t, dir, cfg)
		for seq := uint64(1); seq <= 5; seq++ {
			mustAppend(t, j, frames(1, "a", seq, 1, 40))
		}
		must(t, j.Close())
		path := x.segments(t, dir)[0]
		b := x.read(t, path)
		// Third record's payload, last byte: records are 16+1+56+40 bytes.
		pos := journal.SegHeaderSize + 3*(16+1+56+40) - 1
		b[pos] ^= 0x40
		x.write(t, path, b)

		j2 := open(t, dir, cfg)
		if st := j2.Stats(); st.Scanned != 0 {
			t.Fatalf("expected the snapshot to be used: %+v", st)
		}
		rs, rng := readAll(t, j2, 1, "a")
		if !slices.Equal(seqs(rs), []uint64{1, 2, 4, 5}) || rng.Skipped != 1 {
			t.Fatalf("records %v, range %+v", seqs(rs), rng)
		}
		checkPayloads(t, "a", rs, 40)
		if st := j2.Stats(); st.Corrupt != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestDamagedSnapshotFallsBackToScan damages every byte of a snapshot in
// turn: Open notices (checksum) and scans the segment instead.
func TestDamagedSnapshotFallsBackToScan(t *testing.T) {
	onEachFS(t, func(t *testing.T, x testFS) {
		dir := x.dir(t)
		cfg := x.config()
		cfg.Sync = journal.SyncNever
		j := open(t, dir, cfg)
		for _, b := range crashedBatches(6) {
			mustAppend(t, j, frames(1, b.topic, b.seq, b.count, -1))
		}
		must(t, j.Close())
		idxs := x.glob(t, dir, ".idx")
		if len(idxs) != 1 {
			t.Fatalf("snapshots %v", idxs)
		}
		snap := x.read(t, idxs[0])
		root := x.dir(t)
		for pos := 0; pos < len(snap); pos++ {
			d := filepath.Join(root, fmt.Sprint(pos))
			x.copyDir(t, dir, d)
			damaged := slices.Clone(snap)
			damaged[pos] ^= 0x10
			x.write(t, filepath.Join(d, filepath.Base(idxs[0])), damaged)
			j, err := journal.Open(d, cfg)
			if err != nil {
				t.Fatalf("pos %d: %v", pos, err)
			}
			checkBatches(t, j, crashedBatches(6))
			if st := j.Stats(); st.Scanned == 0 {
				t.Fatalf("pos %d: damaged snapshot was used: %+v", pos, st)
			}
			must(t, j.Close())
			x.removeAll(t, d)
		}
	})
}
