package journal_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/journal"
)

func TestAppendRefusesOutOfOrder(t *testing.T) {
	j := open(t, t.TempDir(), testConfig())
	mustAppend(t, j, frames(7, "a", 1, 3, -1)) // 1..3
	for _, tc := range []struct {
		name string
		f    envelope.Frames
		want error
	}{
		{"duplicate", frames(7, "a", 3, 1, -1), journal.ErrSequence},
		{"step back", frames(7, "a", 1, 1, -1), journal.ErrSequence},
		{"gap", frames(7, "a", 5, 1, -1), journal.ErrSequence},
		{"new topic not at 1", frames(7, "b", 2, 1, -1), journal.ErrSequence},
		{"older epoch", frames(6, "a", 1, 1, -1), journal.ErrEpoch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := j.Stats()
			if err := j.Append(tc.f); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if after := j.Stats(); after.Bytes != before.Bytes || after.Batches != before.Batches {
				t.Fatalf("a refused batch changed the journal: %+v -> %+v", before, after)
			}
		})
	}
	// The stream still continues where it was.
	mustAppend(t, j, frames(7, "a", 4, 1, -1))
	rs, _ := readAll(t, j, 7, "a")
	if !slices.Equal(seqs(rs), span(1, 4)) {
		t.Fatalf("got %v", seqs(rs))
	}
}

func TestAppendRefusesMalformed(t *testing.T) {
	j := open(t, t.TempDir(), testConfig())
	good := frames(7, "a", 1, 1, 10)
	other := good
	h, _ := envelope.ParseHeader(good[1])
	h.Publisher = envelope.ID{1}
	other[1] = envelope.AppendHeader(nil, &h)
	hello, _ := envelope.Encode(nil, envelope.ControlTopic, envelope.Header{Kind: envelope.KindHello, Publisher: testPub, Epoch: 7}, make([]byte, 16))
	for _, tc := range []struct {
		name string
		f    envelope.Frames
		want error
	}{
		{"short header", envelope.Frames{good[0], good[1][:10], good[2]}, journal.ErrBatch},
		{"payload length", envelope.Frames{good[0], good[1], good[2][:5]}, journal.ErrBatch},
		{"empty topic", envelope.Frames{nil, good[1], good[2]}, journal.ErrBatch},
		{"control topic", envelope.Frames{[]byte(envelope.ControlTopic), good[1], good[2]}, journal.ErrBatch},
		{"not data", hello, journal.ErrBatch},
		{"other publisher", other, journal.ErrPublisher},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := j.Append(tc.f); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if st := j.Stats(); st.Batches != 0 || st.AppendErrors != 6 {
		t.Fatalf("stats %+v", st)
	}
	mustAppend(t, j, good)
}

func TestAppendAll(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, testConfig())
	fs := []envelope.Frames{
		frames(9, "a", 1, 2, -1),
		frames(9, "b", 1, 1, -1),
		frames(9, "a", 3, 1, -1),
		frames(9, "a", 9, 1, -1), // gap: refused, and so is the rest
		frames(9, "b", 2, 1, -1),
	}
	n, err := j.AppendAll(fs)
	if n != 3 || !errors.Is(err, journal.ErrSequence) {
		t.Fatalf("AppendAll = %d, %v; want 3, ErrSequence", n, err)
	}
	n, err = j.AppendAll(fs[4:])
	if n != 1 || err != nil {
		t.Fatalf("AppendAll = %d, %v", n, err)
	}
	ra, _ := readAll(t, j, 9, "a")
	rb, _ := readAll(t, j, 9, "b")
	if !slices.Equal(seqs(ra), span(1, 3)) || !slices.Equal(seqs(rb), span(1, 2)) {
		t.Fatalf("a %v b %v", seqs(ra), seqs(rb))
	}
}

func TestEpochs(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, testConfig())
	must(t, j.Begin(10))
	mustAppend(t, j, frames(10, "a", 1, 2, -1))
	must(t, j.Begin(20)) // ends epoch 10
	if err := j.Begin(15); !errors.Is(err, journal.ErrEpoch) {
		t.Fatalf("Begin(15) after 20: %v", err)
	}
	if err := j.Append(frames(10, "a", 3, 1, -1)); !errors.Is(err, journal.ErrEpoch) {
		t.Fatalf("append to an ended epoch: %v", err)
	}
	mustAppend(t, j, frames(20, "a", 1, 1, -1))
	mustAppend(t, j, frames(30, "b", 1, 1, -1)) // begins 30 implicitly
	_, r10 := readAll(t, j, 10, "a")
	if !r10.Closed || !r10.Clean || r10.Final != 2 {
		t.Fatalf("epoch 10: %+v", r10)
	}
	_, r20 := readAll(t, j, 20, "a")
	if !r20.Closed || !r20.Clean || r20.Final != 1 {
		t.Fatalf("epoch 20: %+v", r20)
	}
	_, r30 := readAll(t, j, 30, "b")
	if r30.Closed || r30.Final != 1 {
		t.Fatalf("epoch 30: %+v", r30)
	}
	if got := j.NextEpoch(1); got != 31 {
		t.Fatalf("NextEpoch = %d", got)
	}
	j.Crash()

	j2 := open(t, dir, testConfig())
	eps := j2.Epochs()
	if len(eps) != 3 {
		t.Fatalf("epochs %+v", eps)
	}
	for i, want := range []struct {
		epoch uint64
		clean bool
	}{{10, true}, {20, true}, {30, false}} {
		if eps[i].Epoch != want.epoch || eps[i].Clean != want.clean || eps[i].Active {
			t.Fatalf("epoch %d: %+v", i, eps[i])
		}
	}
	if got := j2.NextEpoch(1); got != 31 {
		t.Fatalf("NextEpoch after reopen = %d", got)
	}
	if err := j2.Append(frames(30, "b", 2, 1, -1)); !errors.Is(err, journal.ErrEpoch) {
		t.Fatalf("append to a crashed epoch after reopen: %v", err)
	}
}

func TestBeginRemembersEpochWithoutData(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, testConfig())
	must(t, j.Begin(1000))
	must(t, j.Close())
	j2 := open(t, dir, testConfig())
	if got := j2.NextEpoch(5); got != 1001 {
		t.Fatalf("NextEpoch = %d, want 1001", got)
	}
}

func TestReadTrimsAndStops(t *testing.T) {
	j := open(t, t.TempDir(), testConfig())
	for seq := uint64(1); seq <= 100; seq += 10 {
		mustAppend(t, j, frames(1, "t", seq, 10, -1))
	}
	var got []uint64
	batches := 0
	rng, err := j.Read(1, "t", 15, 34, func(b journal.Batch) bool {
		batches++
		for seq := range b.Records(15, 34) {
			got = append(got, seq)
		}
		return true
	})
	must(t, err)
	if batches != 3 || !slices.Equal(got, span(15, 34)) {
		t.Fatalf("%d batches, records %v", batches, got)
	}
	if rng.First != 1 || rng.Last != 100 || rng.Final != 100 {
		t.Fatalf("range %+v", rng)
	}
	batches = 0
	_, err = j.Read(1, "t", 1, 100, func(journal.Batch) bool { batches++; return batches < 2 })
	must(t, err)
	if batches != 2 {
		t.Fatalf("fn returning false: %d batches", batches)
	}
	if rng, _ := j.Read(1, "nope", 1, 5, nil); rng.Known {
		t.Fatalf("unknown topic: %+v", rng)
	}
	if rng, _ := j.Read(2, "t", 1, 5, nil); rng.Known {
		t.Fatalf("unknown epoch: %+v", rng)
	}
}

func TestSegmentsRollAndReadAcross(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = journal.MinSegmentBytes
	j := open(t, dir, cfg)
	for seq := uint64(1); seq <= 300; seq++ {
		mustAppend(t, j, frames(1, "a", seq, 1, 100))
		if seq%3 == 0 {
			mustAppend(t, j, frames(1, "b", seq/3, 1, 50))
		}
	}
	if n := len(segments(t, dir)); n < 5 {
		t.Fatalf("%d segments", n)
	}
	check := func(j *journal.Journal) {
		ra, _ := readAll(t, j, 1, "a")
		rb, _ := readAll(t, j, 1, "b")
		if !slices.Equal(seqs(ra), span(1, 300)) || !slices.Equal(seqs(rb), span(1, 100)) {
			t.Fatalf("a %d b %d records", len(ra), len(rb))
		}
		checkPayloads(t, "a", ra, 100)
		checkPayloads(t, "b", rb, 50)
	}
	check(j)
	must(t, j.Close())
	j2 := open(t, dir, cfg)
	check(j2)
	if st := j2.Stats(); st.Scanned != 0 {
		t.Fatalf("scanned %d segments after a clean close", st.Scanned)
	}
	j2.Crash()
	// Without snapshots every segment is scanned and the result is the same.
	idx, _ := filepathGlob(dir, "*.idx")
	for _, p := range idx {
		must(t, removeFile(p))
	}
	j3 := open(t, dir, cfg)
	check(j3)
	if st := j3.Stats(); st.Loaded != 0 || st.Scanned == 0 {
		t.Fatalf("stats %+v", st)
	}
}
