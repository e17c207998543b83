package journal_test

import (
	"slices"
	"testing"
	"time"

	"github.com/syncmq/syncmq/journal"
)

func TestRetentionMaxMessagesAndBytes(t *testing.T) {
	cfg := testConfig()
	cfg.Retention.MaxMessages = 10
	j := open(t, t.TempDir(), cfg)
	for seq := uint64(1); seq <= 40; seq += 4 {
		mustAppend(t, j, frames(1, "a", seq, 4, 10))
	}
	rs, rng := readAll(t, j, 1, "a")
	// Whole batches, at most 10 records: the last two batches.
	if !slices.Equal(seqs(rs), span(33, 40)) || rng.First != 33 || rng.Final != 40 {
		t.Fatalf("%v %+v", seqs(rs), rng)
	}
	// A batch larger than the limit is still kept, alone.
	mustAppend(t, j, frames(1, "a", 41, 20, 10))
	if rs, _ := readAll(t, j, 1, "a"); !slices.Equal(seqs(rs), span(41, 60)) {
		t.Fatalf("%v", seqs(rs))
	}

	cfg = testConfig()
	cfg.Retention.MaxBytes = 1000 // records of 16+1+56+100 = 173 bytes
	j2 := open(t, t.TempDir(), cfg)
	for seq := uint64(1); seq <= 20; seq++ {
		mustAppend(t, j2, frames(1, "b", seq, 1, 100))
	}
	if rs, _ := readAll(t, j2, 1, "b"); !slices.Equal(seqs(rs), span(16, 20)) {
		t.Fatalf("%v", seqs(rs))
	}
	if st := j2.Stats(); st.Evicted != 15 || st.Batches != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRetentionReclaimsSegments: per-topic limits trim the index; a sealed
// segment is deleted once no stream holds anything in it, and a reopen
// with the same limits comes back to the same state.
func TestRetentionReclaimsSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = journal.MinSegmentBytes
	cfg.Retention.MaxMessages = 20
	j := open(t, dir, cfg)
	for seq := uint64(1); seq <= 500; seq++ {
		mustAppend(t, j, frames(1, "busy", seq, 1, 100))
	}
	st := j.Stats()
	if st.SegmentsDeleted == 0 || st.Segments > 3 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(segments(t, dir)); n != st.Segments {
		t.Fatalf("%d files, %d segments", n, st.Segments)
	}
	rs, _ := readAll(t, j, 1, "busy")
	if !slices.Equal(seqs(rs), span(481, 500)) {
		t.Fatalf("%v", seqs(rs))
	}
	must(t, j.Close())
	j2 := open(t, dir, cfg)
	rs, rng := readAll(t, j2, 1, "busy")
	if !slices.Equal(seqs(rs), span(481, 500)) || rng.Final != 500 {
		t.Fatalf("after reopen: %v %+v", seqs(rs), rng)
	}
}

// TestGlobalBudget: the oldest segments go, whatever topic or epoch they
// hold, to keep the files within MaxBytes.
func TestGlobalBudget(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = journal.MinSegmentBytes
	cfg.MaxBytes = 4 * journal.MinSegmentBytes
	j := open(t, dir, cfg)
	for seq := uint64(1); seq <= 100; seq++ {
		mustAppend(t, j, frames(1, "old", seq, 1, 100))
	}
	for seq := uint64(1); seq <= 200; seq++ {
		mustAppend(t, j, frames(2, "new", seq, 1, 100))
		if st := j.Stats(); st.Bytes > cfg.MaxBytes {
			t.Fatalf("seq %d: %d bytes over the budget", seq, st.Bytes)
		}
	}
	var total int64
	for _, p := range segments(t, dir) {
		total += fileSize(t, p)
	}
	if total > cfg.MaxBytes {
		t.Fatalf("files hold %d bytes", total)
	}
	// Epoch 1 is gone entirely and forgotten; epoch 2 holds a suffix.
	if rng, _ := j.Read(1, "old", 1, 100, nil); rng.Known {
		t.Fatalf("epoch 1 still known: %+v", rng)
	}
	rs, rng := readAll(t, j, 2, "new")
	if rng.Last != 200 || rng.First == 1 || !slices.Equal(seqs(rs), span(rng.First, 200)) {
		t.Fatalf("%+v", rng)
	}
	must(t, j.Close())
	// Reopening with a smaller budget deletes more.
	cfg.MaxBytes = 2 * journal.MinSegmentBytes
	j2 := open(t, dir, cfg)
	if st := j2.Stats(); st.Bytes > cfg.MaxBytes || st.SegmentsDeleted == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestMaxAgeOnOpen: a journal reopened after a downtime drops what aged
// out meanwhile; the publish times are the envelopes' own.
func TestMaxAgeOnOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	j := open(t, dir, cfg)
	now := time.Now()
	for seq := uint64(1); seq <= 10; seq++ {
		// seq 1..5 two hours old, 6..10 a minute old.
		age := time.Minute
		if seq <= 5 {
			age = 2 * time.Hour
		}
		mustAppend(t, j, framesAt(1, "a", seq, 1, now.Add(-age).UnixNano()))
	}
	must(t, j.Close())
	cfg.Retention.MaxAge = time.Hour
	j2 := open(t, dir, cfg)
	rs, rng := readAll(t, j2, 1, "a")
	if !slices.Equal(seqs(rs), span(6, 10)) || rng.Final != 10 {
		t.Fatalf("%v %+v", seqs(rs), rng)
	}
}

// TestMaxAgeInBackground: batches age out while the journal is open.
func TestMaxAgeInBackground(t *testing.T) {
	cfg := testConfig()
	cfg.Retention.MaxAge = 50 * time.Millisecond
	j := open(t, t.TempDir(), cfg)
	mustAppend(t, j, framesAt(1, "a", 1, 1, time.Now().UnixNano()))
	deadline := time.Now().Add(10 * time.Second)
	for j.Stats().Batches != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("batch not aged out: %+v", j.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, rng := readAll(t, j, 1, "a"); !rng.Known || rng.Final != 1 || rng.Last != 0 {
		t.Fatalf("%+v", rng)
	}
}
