package journal_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/journal"
)

var syncModes = []journal.SyncMode{journal.SyncInterval, journal.SyncAlways, journal.SyncNever}

// setSeq rewrites the first sequence of an encoded batch in place (the
// envelope checksum covers only the payload).
func setSeq(f envelope.Frames, seq uint64) { binary.BigEndian.PutUint64(f[1][32:], seq) }

func reportRecords(b *testing.B, records int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)*float64(records)/s, "records/s")
	}
}

// BenchmarkAppend appends one batch per op: a full batch of 65535 7-byte
// records (a busy publisher) and a single 1 KiB record (an idle one), under
// each sync mode. SetBytes counts payload bytes.
func BenchmarkAppend(b *testing.B) {
	for _, shape := range []struct {
		name        string
		count, size int
	}{{"7Bx65535", envelope.MaxRecords, 7}, {"1KiBx1", 1, 1024}} {
		for _, mode := range syncModes {
			b.Run(fmt.Sprintf("%s/sync=%v", shape.name, mode), func(b *testing.B) {
				cfg := testConfig()
				cfg.Sync = mode
				j, err := journal.Open(b.TempDir(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer j.Close()
				f := frames(1, "bench.orders.eu", 1, shape.count, shape.size)
				b.ReportAllocs()
				b.SetBytes(int64(shape.count * shape.size))
				seq := uint64(1)
				for b.Loop() {
					setSeq(f, seq)
					if err := j.Append(f); err != nil {
						b.Fatal(err)
					}
					seq += uint64(shape.count)
				}
				reportRecords(b, shape.count)
			})
		}
	}
}

// BenchmarkAppendAll appends 64 single-record 1 KiB batches per op with
// one call, as a sender flushing a burst does.
func BenchmarkAppendAll(b *testing.B) {
	for _, mode := range syncModes {
		b.Run(fmt.Sprintf("64x1KiB/sync=%v", mode), func(b *testing.B) {
			cfg := testConfig()
			cfg.Sync = mode
			j, err := journal.Open(b.TempDir(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			fs := make([]envelope.Frames, 64)
			for i := range fs {
				fs[i] = frames(1, "bench.orders.eu", 1, 1, 1024)
			}
			b.ReportAllocs()
			b.SetBytes(64 * 1024)
			seq := uint64(1)
			for b.Loop() {
				for i := range fs {
					setSeq(fs[i], seq)
					seq++
				}
				if _, err := j.AppendAll(fs); err != nil {
					b.Fatal(err)
				}
			}
			reportRecords(b, 64)
		})
	}
}

// fillJournal writes records records of size bytes to topic "gap" of
// epoch 1 in batches of batch records, plus one record of "other" every
// 16 batches, and closes the journal.
func fillJournal(b *testing.B, dir string, records, batch, size int) {
	b.Helper()
	cfg := testConfig()
	cfg.Sync = journal.SyncNever
	cfg.MaxBytes = 64 << 30
	j, err := journal.Open(dir, cfg)
	if err != nil {
		b.Fatal(err)
	}
	full := frames(1, "gap", 1, batch, size)
	other := frames(1, "other", 1, 1, size)
	for seq, n := uint64(1), 0; seq <= uint64(records); seq += uint64(batch) {
		f := full
		if left := records - int(seq) + 1; left < batch {
			f = frames(1, "gap", seq, left, size)
		}
		setSeq(f, seq)
		if err := j.Append(f); err != nil {
			b.Fatal(err)
		}
		if n++; n%16 == 0 {
			setSeq(other, uint64(n/16))
			if err := j.Append(other); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReplay reads a whole gap per op, as the recovery server would:
// 1,000,000 records of 7 bytes stored in full batches and in
// single-record batches, and 100,000 records of 1 KiB stored singly. The
// files are in the page cache (written just before), as a recent gap is.
func BenchmarkReplay(b *testing.B) {
	for _, c := range []struct {
		name                 string
		records, batch, size int
	}{
		{"7B/batch=65535", 1_000_000, envelope.MaxRecords, 7},
		{"7B/batch=1", 1_000_000, 1, 7},
		{"1KiB/batch=1", 100_000, 1, 1024},
	} {
		b.Run(fmt.Sprintf("%s/records=%d", c.name, c.records), func(b *testing.B) {
			dir := b.TempDir()
			fillJournal(b, dir, c.records, c.batch, c.size)
			cfg := testConfig()
			j, err := journal.Open(dir, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			b.ReportAllocs()
			b.SetBytes(int64(c.records * c.size))
			for b.Loop() {
				n := 0
				_, err := j.Read(1, "gap", 1, uint64(c.records), func(bt journal.Batch) bool {
					m := bt.Message()
					for range m.Records() {
						n++
					}
					return true
				})
				if err != nil || n != c.records {
					b.Fatalf("read %d records: %v", n, err)
				}
			}
			reportRecords(b, c.records)
		})
	}
}

// BenchmarkReopen measures Open (until it can serve) and Close of a
// journal of 256 MiB, after a clean Close (every segment has a snapshot)
// and after a crash (the last segment has none and is scanned).
func BenchmarkReopen(b *testing.B) {
	for _, c := range []struct {
		name        string
		batch, size int
	}{{"64KiB-batches", 64, 1024}, {"1KiB-batches", 1, 1024}} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			fillJournal(b, dir, 256<<20/c.size, c.batch, c.size)
			cfg := testConfig()
			cfg.MaxBytes = 64 << 30
			b.ReportAllocs()
			for b.Loop() {
				j, err := journal.Open(dir, cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := j.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/open")
		})
	}
}

// TestReopenLarge writes SYNCMQ_JOURNAL_REOPEN_GIB GiB (unset: skipped)
// and reports how long Open takes until the journal serves a Read, after
// a clean Close and after a crash.
func TestReopenLarge(t *testing.T) {
	gib, _ := strconv.Atoi(os.Getenv("SYNCMQ_JOURNAL_REOPEN_GIB"))
	if gib <= 0 {
		t.Skip("set SYNCMQ_JOURNAL_REOPEN_GIB=1 to write 1 GiB and time the reopen")
	}
	for _, c := range []struct {
		name        string
		batch, size int
	}{{"64KiB-batches", 64, 1024}, {"1KiB-batches", 1, 1024}} {
		dir := t.TempDir()
		cfg := testConfig()
		cfg.Sync = journal.SyncNever
		cfg.MaxBytes = int64(gib+1) << 30
		j := open(t, dir, cfg)
		f := frames(1, "gap", 1, c.batch, c.size)
		records := gib << 30 / c.size
		for seq := uint64(1); seq <= uint64(records); seq += uint64(c.batch) {
			setSeq(f, seq)
			mustAppend(t, j, f)
		}
		for _, crash := range []bool{false, true} {
			if crash {
				j.Crash()
			} else {
				must(t, j.Close())
			}
			// Let the kernel write the dirty pages back first: timing Open
			// under a gigabyte of writeback would measure the disk.
			syscall.Sync()
			start := time.Now()
			j = open(t, dir, cfg)
			n := 0
			_, err := j.Read(1, "gap", uint64(records), uint64(records), func(journal.Batch) bool { n++; return true })
			took := time.Since(start)
			must(t, err)
			st := j.Stats()
			t.Logf("%s, %d GiB, crash=%v: open to first read %v (%d segments: %d from snapshots, %d scanned; %d batches)",
				c.name, gib, crash, took, st.Segments, st.Loaded, st.Scanned, st.Batches)
			if n != 1 {
				t.Fatalf("read %d batches", n)
			}
			// Leave the journal as a crash would for the next round.
			mustAppend(t, j, frames(j.NextEpoch(2), "x", 1, 1, 1))
		}
		must(t, j.Close())
		os.RemoveAll(dir)
	}
}
