package journal_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/journal"
)

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, testConfig())
	mustAppend(t, j, frames(5, "a", 1, 1, -1))
	mustAppend(t, j, frames(5, "b", 1, 3, -1))
	mustAppend(t, j, frames(5, "a", 2, 4, -1))
	mustAppend(t, j, frames(5, "b", 4, 1, -1))

	check := func(j *journal.Journal, closed, clean bool) {
		t.Helper()
		ra, rng := readAll(t, j, 5, "a")
		if !slices.Equal(seqs(ra), span(1, 5)) {
			t.Fatalf("a: %v", seqs(ra))
		}
		checkPayloads(t, "a", ra, -1)
		want := journal.Range{Known: true, First: 1, Last: 5, Final: 5, Closed: closed, Clean: clean}
		if rng != want {
			t.Fatalf("range %+v, want %+v", rng, want)
		}
		rb, _ := readAll(t, j, 5, "b")
		if !slices.Equal(seqs(rb), span(1, 4)) {
			t.Fatalf("b: %v", seqs(rb))
		}
		checkPayloads(t, "b", rb, -1)
	}
	check(j, false, false)
	st := j.Stats()
	if st.Appended != 4 || st.Batches != 4 || st.Records != 9 {
		t.Fatalf("stats %+v", st)
	}
	must(t, j.Close())
	must(t, j.Close()) // idempotent
	if err := j.Append(frames(5, "a", 6, 1, -1)); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := j.Read(5, "a", 1, 1, nil); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}

	j2 := open(t, dir, testConfig())
	check(j2, true, true)
	eps := j2.Epochs()
	if len(eps) != 1 || eps[0].Epoch != 5 || !eps[0].Clean || eps[0].Active || len(eps[0].Topics) != 2 {
		t.Fatalf("epochs %+v", eps)
	}
	if st := j2.Stats(); st.Loaded == 0 || st.Scanned != 0 {
		t.Fatalf("reopen after Close should use snapshots only: %+v", st)
	}
	if got := j2.NextEpoch(3); got != 6 {
		t.Fatalf("NextEpoch(3) = %d, want 6", got)
	}
	if got := j2.NextEpoch(100); got != 100 {
		t.Fatalf("NextEpoch(100) = %d", got)
	}
}
