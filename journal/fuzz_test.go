package journal_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/simdisk"
	"github.com/syncmq/syncmq/journal"
)

// recordSeeds returns valid records of each type and a few damaged ones.
func recordSeeds() [][]byte {
	batch := journal.EncodeBatchRecord(frames(3, "orders.eu", 7, 3, -1))
	single := journal.EncodeBatchRecord(frames(3, "t", 1, 1, 0))
	end := journal.EncodeEndRecord(3, baseTime, []string{"a", "orders.eu"}, []uint64{5, 9})
	empty := journal.EncodeEndRecord(3, baseTime, nil, nil)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i%len(c)] ^= 0x80; return c }
	return [][]byte{
		batch, single, end, empty,
		append(bytes.Clone(batch), end...), // two records back to back
		batch[:len(batch)-1],               // torn
		batch[:journal.RecHeadSize],        // head only
		flip(batch, 5),                     // length
		flip(batch, 8),                     // type
		flip(batch, 20),                    // envelope header
		flip(batch, len(batch)-1),          // payload
		flip(end, len(end)-3),              // end entry
		nil,
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range recordSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, n, err := journal.DecodeRecord(b, testPub)
		if err != nil {
			return
		}
		if n < journal.RecHeadSize || n > len(b) || (typ != 1 && typ != 2) {
			t.Fatalf("decoded type %d size %d from %d bytes", typ, n, len(b))
		}
		// The record is self-delimiting: its bytes alone decode the same,
		// and one byte fewer is not a record.
		if typ2, n2, err := journal.DecodeRecord(b[:n], testPub); err != nil || typ2 != typ || n2 != n {
			t.Fatalf("exact bytes: %d %d %v", typ2, n2, err)
		}
		if _, _, err := journal.DecodeRecord(b[:n-1], testPub); err == nil {
			t.Fatal("a truncated record decoded")
		}
		// Another publisher's journal does not accept a batch record.
		if _, _, err := journal.DecodeRecord(b[:n], envelope.ID{0xee}); typ == 1 && err == nil {
			t.Fatal("batch accepted for another publisher")
		}
	})
}

// snapshotSeed returns the bytes of a real snapshot and JOURNAL file.
func snapshotSeed(f *testing.F) (snap, meta []byte) {
	dir := f.TempDir()
	cfg := testConfig()
	cfg.Sync = journal.SyncNever
	j, err := journal.Open(dir, cfg)
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range crashedBatches(6) {
		if err := j.Append(frames(1, b.topic, b.seq, b.count, -1)); err != nil {
			f.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		f.Fatal(err)
	}
	idx, _ := filepathGlob(dir, "*.idx")
	snap, err = os.ReadFile(idx[0])
	if err != nil {
		f.Fatal(err)
	}
	meta, err = os.ReadFile(filepath.Join(dir, "JOURNAL"))
	if err != nil {
		f.Fatal(err)
	}
	return snap, meta
}

func FuzzDecodeSnapshot(f *testing.F) {
	snap, _ := snapshotSeed(f)
	f.Add(snap)
	f.Add(toVersion1(f, snap))
	f.Add(snap[:len(snap)-4])
	f.Add([]byte("SQJI"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = journal.DecodeSnapshot(b) // must not panic or allocate without bound
	})
}

func FuzzDecodeMeta(f *testing.F) {
	_, meta := snapshotSeed(f)
	f.Add(meta)
	f.Add(meta[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := journal.DecodeMeta(b); err == nil && len(b) != len(meta) {
			t.Fatalf("%d-byte JOURNAL file accepted", len(b))
		}
	})
}

// FuzzOpenSegment opens a journal whose only segment holds arbitrary
// bytes after a valid header: Open never panics or fails on the content,
// and everything Read delivers is a valid envelope.
func FuzzOpenSegment(f *testing.F) {
	_, meta := snapshotSeed(f)
	for _, s := range recordSeeds() {
		f.Add(s)
	}
	var all []byte
	for _, b := range crashedBatches(4) {
		all = append(all, journal.EncodeBatchRecord(frames(1, b.topic, b.seq, b.count, -1))...)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "JOURNAL"), meta, 0o640); err != nil {
			t.Fatal(err)
		}
		seg := append(journal.EncodeSegmentHeader(testPub, 1), body...)
		if err := os.WriteFile(filepath.Join(dir, "0000000001.log"), seg, 0o640); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Sync = journal.SyncNever
		j, err := journal.Open(dir, cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer j.Close()
		for _, ep := range j.Epochs() {
			for _, ti := range ep.Topics {
				_, err := j.Read(ep.Epoch, ti.Topic, 0, ^uint64(0), func(b journal.Batch) bool {
					if _, err := envelope.Decode(b.Frames[:], envelope.Limits{}); err != nil {
						t.Fatalf("Read delivered an invalid envelope: %v", err)
					}
					return true
				})
				if err != nil && !errors.Is(err, journal.ErrClosed) {
					t.Fatal(err)
				}
			}
		}
	})
}

// FuzzOpenSnapshotted opens a journal whose segment, sealed with a valid
// snapshot of what a clean Close wrote, now holds arbitrary bytes (the
// seeds: the real ones, cut short, with flipped bits): Open trusts the
// snapshot and never fails, Read delivers only valid envelopes of the
// snapshot's streams, and every sequence from a stream's first held to
// its final one is either delivered or in a hole, never neither.
func FuzzOpenSnapshotted(f *testing.F) {
	sd := simdisk.New()
	sx := testFS{name: "simdisk", FS: sd, disk: sd}
	src, segPath := closedJournal(f, sx, 6)
	seg := sx.read(f, segPath)
	files := map[string][]byte{}
	for _, name := range []string{"JOURNAL", filepath.Base(segPath)[:10] + ".idx"} {
		files[name] = sx.read(f, filepath.Join(src, name))
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Add(seg[:len(seg)/2])
	for _, pos := range []int{40, len(seg) / 2, len(seg) - 30} {
		b := slices.Clone(seg)
		b[pos] ^= 0x04
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		d := simdisk.New()
		x := testFS{name: "simdisk", FS: d, disk: d}
		must(t, d.MkdirAll("/j", 0o750))
		for name, b := range files {
			x.write(t, filepath.Join("/j", name), b)
		}
		x.write(t, filepath.Join("/j", filepath.Base(segPath)), body)
		cfg := x.config()
		cfg.Sync = journal.SyncNever
		j, err := journal.Open("/j", cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer j.Close()
		for _, ep := range j.Epochs() {
			for _, ti := range ep.Topics {
				seen := map[uint64]bool{}
				rng, err := j.Read(ep.Epoch, ti.Topic, 0, ^uint64(0), func(b journal.Batch) bool {
					m, err := envelope.Decode(b.Frames[:], envelope.Limits{})
					if err != nil {
						t.Fatalf("Read delivered an invalid envelope: %v", err)
					}
					for s := range m.Records() {
						seen[s] = true
					}
					return true
				})
				must(t, err)
				var holes []journal.Hole
				for _, e := range j.Epochs() {
					for _, ti2 := range e.Topics {
						if e.Epoch == ep.Epoch && ti2.Topic == ti.Topic {
							holes = ti2.Holes
						}
					}
				}
				for s := max(rng.First, 1); rng.First > 0 && s <= rng.Final; s++ {
					inHole := slices.ContainsFunc(holes, func(h journal.Hole) bool { return s >= h.From && s <= h.To })
					if seen[s] == inHole {
						t.Fatalf("%s seq %d: delivered %v, in a hole %v (holes %v, range %+v)", ti.Topic, s, seen[s], inHole, holes, rng)
					}
				}
			}
		}
	})
}
