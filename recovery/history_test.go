package recovery

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

// batchOf encodes records first.. of topic as one DATA envelope, the way
// the publisher sends it.
func batchOf(topic string, first uint64, payloads ...[]byte) envelope.Frames {
	var b envelope.Builder
	b.Begin(nil, topic, envelope.Header{Kind: envelope.KindData, Seq: first, Time: int64(first)})
	for _, p := range payloads {
		b.Add(p)
	}
	f, _ := b.Finish()
	return f
}

func mustHistory(t testing.TB, cfg HistoryConfig) *History {
	t.Helper()
	h, err := NewHistory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// appendRun appends from..to of topic in batches of per records.
func appendRun(t testing.TB, h *History, topic string, from, to uint64, per int) {
	t.Helper()
	for q := from; q <= to; q += uint64(per) {
		var ps [][]byte
		for s := q; s < q+uint64(per) && s <= to; s++ {
			ps = append(ps, payloadOf(s))
		}
		f := batchOf(topic, q, ps...)
		if err := h.AppendBatch(topic, q, len(ps), f[1], f[2]); err != nil {
			t.Fatal(err)
		}
	}
}

// records decodes every record Batches hands over for [from, to].
func records(t testing.TB, h *History, topic string, from, to uint64) (map[uint64]string, Bounds) {
	t.Helper()
	got := map[uint64]string{}
	var prev uint64
	b := h.Batches(topic, from, to, func(b Batch) bool {
		if prev != 0 && b.First != prev+1 {
			t.Fatalf("batches not contiguous: %d after %d", b.First, prev)
		}
		prev = b.Last()
		hdr, err := envelope.ParseHeader(b.Header)
		if err != nil || hdr.Seq != b.First || int(hdr.Count) != b.Count {
			t.Fatalf("retained header %+v, %v; batch at %d of %d", hdr, err, b.First, b.Count)
		}
		m, err := envelope.Decode([][]byte{[]byte(topic), b.Header, b.Payload}, envelope.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for seq, p := range m.Records() {
			got[seq] = string(p)
		}
		return true
	})
	return got, b
}

func TestHistoryConfigValidate(t *testing.T) {
	if err := DefaultHistoryConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []HistoryConfig{
		{MaxMessages: -1, MaxBytes: 1 << 20, MaxTopics: 1},
		{MaxMessages: 1, MaxBytes: 1000, MaxTopics: 1},
		{MaxMessages: 1, MaxBytes: 1 << 20, MaxTopicBytes: -1, MaxTopics: 1},
		{MaxMessages: 1, MaxBytes: 1 << 20, MaxTopics: 0},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: Validate = %v", c, err)
		}
		if _, err := NewHistory(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: NewHistory = %v", c, err)
		}
	}
}

func TestHistoryBatches(t *testing.T) {
	h := mustHistory(t, DefaultHistoryConfig())
	appendRun(t, h, "a", 1, 100, 10)
	got, b := records(t, h, "a", 35, 52)
	if b != (Bounds{First: 1, Last: 100, Published: 100, Known: true}) {
		t.Fatalf("bounds %+v", b)
	}
	// Whole batches overlapping 35..52: 31..60.
	if len(got) != 30 || got[31] != "p31" || got[60] != "p60" {
		t.Fatalf("got %d records %v", len(got), got)
	}
	if got, _ := records(t, h, "a", 101, 200); len(got) != 0 {
		t.Fatalf("beyond the end: %v", got)
	}
	if b := h.Bounds("nope"); b.Known {
		t.Fatalf("unknown topic: %+v", b)
	}
}

func TestHistoryEvictsByCount(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 25, MaxBytes: 1 << 20, MaxTopics: 1})
	appendRun(t, h, "a", 1, 100, 10)
	got, b := records(t, h, "a", 1, 100)
	// At least 25 records, at most one batch more: 71..100.
	if b.First != 71 || b.Last != 100 || len(got) != 30 {
		t.Fatalf("bounds %+v, %d records", b, len(got))
	}
}

// TestHistoryBudgetIsShared: the whole History stays within MaxBytes
// whatever the topic count, and a busy topic evicts its own history before
// a quiet topic's.
func TestHistoryBudgetIsShared(t *testing.T) {
	for _, topics := range []int{10, 2000, 10_000} {
		t.Run(fmt.Sprint(topics), func(t *testing.T) {
			cfg := HistoryConfig{MaxBytes: 8 << 20, MaxMessages: 1 << 20, MaxTopics: 10_000}
			h := mustHistory(t, cfg)
			payload := bytes.Repeat([]byte{'x'}, 1024)
			next := make([]uint64, topics)
			for i := 0; i < 20_000; i++ {
				k := i % topics
				next[k]++
				f := batchOf(fmt.Sprint(k), next[k], payload)
				if err := h.AppendBatch(fmt.Sprint(k), next[k], 1, f[1], f[2]); err != nil {
					t.Fatal(err)
				}
				if st := h.Stats(); st.Bytes > cfg.MaxBytes {
					t.Fatalf("after %d appends: %d bytes charged, budget %d", i+1, st.Bytes, cfg.MaxBytes)
				}
			}
		})
	}
	t.Run("quiet topic survives", func(t *testing.T) {
		h := mustHistory(t, HistoryConfig{MaxBytes: 1 << 20, MaxMessages: 1 << 20, MaxTopics: 10})
		appendRun(t, h, "quiet", 1, 10, 1)
		appendRun(t, h, "busy", 1, 200_000, 1000)
		if b := h.Bounds("quiet"); b.First != 1 || b.Last != 10 {
			t.Fatalf("quiet topic lost its history to a busy one: %+v", b)
		}
		if b := h.Bounds("busy"); b.Last != 200_000 || b.First == 1 {
			t.Fatalf("busy topic %+v", b)
		}
	})
	t.Run("topic cap", func(t *testing.T) {
		h := mustHistory(t, HistoryConfig{MaxBytes: 8 << 20, MaxTopicBytes: 64 << 10, MaxMessages: 1 << 20, MaxTopics: 10})
		appendRun(t, h, "a", 1, 50_000, 100)
		if st := h.Stats(); st.Bytes > 64<<10 {
			t.Fatalf("one topic holds %d bytes, cap 64 KiB", st.Bytes)
		}
	})
}

func TestHistoryRejectsOutOfOrder(t *testing.T) {
	h := mustHistory(t, DefaultHistoryConfig())
	appendRun(t, h, "a", 1, 10, 5)
	f := batchOf("a", 10, []byte("x"))
	for _, first := range []uint64{0, 5, 10} {
		if err := h.AppendBatch("a", first, 1, f[1], f[2]); !errors.Is(err, ErrOutOfOrder) {
			t.Fatalf("first %d: %v", first, err)
		}
	}
	if b := h.Bounds("a"); b.First != 1 || b.Last != 10 {
		t.Fatalf("a rejected append changed the history: %+v", b)
	}
}

func TestHistorySkipKeepsContiguous(t *testing.T) {
	h := mustHistory(t, DefaultHistoryConfig())
	appendRun(t, h, "a", 1, 10, 5)
	appendRun(t, h, "a", 20, 29, 5)
	if b := h.Bounds("a"); b.First != 20 || b.Last != 29 {
		t.Fatalf("after a skip: %+v", b)
	}
}

func TestHistoryTooLarge(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxBytes: 1 << 20, MaxMessages: 100, MaxTopics: 2})
	appendRun(t, h, "a", 1, 10, 1)
	f := batchOf("a", 11, make([]byte, 1<<20))
	if err := h.AppendBatch("a", 11, 1, f[1], f[2]); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize batch: %v", err)
	}
	if b := h.Bounds("a"); b.First != 0 || b.Published != 11 {
		t.Fatalf("after an oversize batch: %+v", b)
	}
	appendRun(t, h, "a", 12, 12, 1)
	if b := h.Bounds("a"); b.First != 12 {
		t.Fatalf("after the next batch: %+v", b)
	}
}

func TestHistoryMaxTopics(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxBytes: 1 << 20, MaxMessages: 100, MaxTopics: 2})
	appendRun(t, h, "a", 1, 5, 1)
	appendRun(t, h, "b", 1, 5, 1)
	appendRun(t, h, "a", 6, 6, 1) // a is now the most recent
	appendRun(t, h, "c", 1, 5, 1)
	if h.Bounds("b").Known || !h.Bounds("a").Known || !h.Bounds("c").Known {
		t.Fatal("the least recently appended topic was not the one forgotten")
	}
	if st := h.Stats(); st.Topics != 2 || st.EvictedTopics != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistoryRetentionOff(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxTopics: 1})
	appendRun(t, h, "a", 1, 5, 1)
	if b := h.Bounds("a"); b.Known {
		t.Fatalf("retention off, yet %+v", b)
	}
}

func TestHistoryCopiesBatch(t *testing.T) {
	h := mustHistory(t, DefaultHistoryConfig())
	f := batchOf("a", 1, []byte("hello"))
	if err := h.AppendBatch("a", 1, 1, f[1], f[2]); err != nil {
		t.Fatal(err)
	}
	f[2][0] = 'X'
	if got, _ := records(t, h, "a", 1, 1); got[1] != "hello" {
		t.Fatalf("history aliases the caller's buffer: %q", got[1])
	}
}

// TestHistoryModel appends random batches to random topics and checks the
// History against a model: contiguity, content, the MaxMessages floor, and
// the memory budget.
func TestHistoryModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 30; round++ {
		cfg := HistoryConfig{MaxBytes: int64(1<<20 + r.IntN(1<<20)), MaxMessages: 1 + r.IntN(500), MaxTopics: 1 + r.IntN(4)}
		if r.IntN(2) == 0 {
			cfg.MaxTopicBytes = int64(64<<10 + r.IntN(512<<10))
		}
		h := mustHistory(t, cfg)
		last := map[string]uint64{}
		topics := []string{"t0", "t1", "t2", "t3", "t4"}
		for i := 0; i < 1500; i++ {
			topic := topics[r.IntN(len(topics))]
			if !h.Bounds(topic).Known {
				delete(last, topic) // forgotten as least recently used
			}
			first := last[topic] + 1
			if r.IntN(20) == 0 {
				first += uint64(r.IntN(5)) // skip ahead
			}
			n := 1 + r.IntN(20)
			ps := make([][]byte, n)
			for j := range ps {
				size := r.IntN(300)
				if r.IntN(100) == 0 {
					size = maxChunk + r.IntN(maxChunk)
				}
				ps[j] = bytes.Repeat([]byte{byte(first) + byte(j)}, size)
			}
			f := batchOf(topic, first, ps...)
			err := h.AppendBatch(topic, first, n, f[1], f[2])
			last[topic] = first + uint64(n) - 1
			if err != nil && !errors.Is(err, ErrTooLarge) {
				t.Fatal(err)
			}
			if st := h.Stats(); st.Bytes > cfg.MaxBytes {
				t.Fatalf("round %d step %d: %d bytes charged, budget %d", round, i, st.Bytes, cfg.MaxBytes)
			}
			got, b := records(t, h, topic, 0, ^uint64(0))
			if b.Published != last[topic] {
				t.Fatalf("published %d, appended up to %d", b.Published, last[topic])
			}
			if err == nil && (b.Last != last[topic] || len(got) == 0) {
				t.Fatalf("round %d step %d: the batch just appended is not held: %+v", round, i, b)
			}
			if b.First != 0 && uint64(len(got)) != b.Last-b.First+1 {
				t.Fatalf("round %d step %d: %d records held for %d..%d", round, i, len(got), b.First, b.Last)
			}
			for seq, p := range got {
				if len(p) > 0 && p[0] != byte(seq) { // record j of a batch from first holds byte(first+j)
					t.Fatalf("round %d step %d: record %d corrupted", round, i, seq)
				}
			}
		}
	}
}

// TestHistoryConcurrentReaders runs one writer against readers that check
// every record they see matches its sequence; run it with -race.
func TestHistoryConcurrentReaders(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 500, MaxBytes: 1 << 20, MaxTopics: 4})
	const n = 20000
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				h.Batches("a", 0, ^uint64(0), func(b Batch) bool {
					m, err := envelope.Decode([][]byte{[]byte("a"), b.Header, b.Payload}, envelope.Limits{})
					if err != nil {
						errs <- err
						return false
					}
					for seq, p := range m.Records() {
						if string(p) != string(payloadOf(seq)) {
							errs <- fmt.Errorf("seq %d holds %q", seq, p)
							return false
						}
					}
					return true
				})
			}
		}()
	}
	appendRun(t, h, "a", 1, n, 7)
	close(done)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func TestHistoryAppendDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	h := mustHistory(t, HistoryConfig{MaxMessages: 1000, MaxBytes: 1 << 20, MaxTopics: 1})
	f := batchOf("a", 1, bytes.Repeat([]byte("x"), 100))
	seq := uint64(1)
	step := func() {
		if err := h.AppendBatch("a", seq, 1, f[1], f[2]); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	for i := 0; i < 5000; i++ { // reach the limits
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Fatalf("%v allocations per AppendBatch once full", n)
	}
}

// BenchmarkHistoryAppend compares retaining 1,000 records as one batch
// (one lock, one copy) with retaining them as 1,000 single-record batches.
func BenchmarkHistoryAppend(b *testing.B) {
	for _, per := range []int{1, 1000} {
		b.Run(fmt.Sprintf("records-per-batch=%d", per), func(b *testing.B) {
			h := mustHistory(b, HistoryConfig{MaxMessages: 100_000, MaxBytes: 64 << 20, MaxTopics: 1})
			ps := make([][]byte, per)
			for i := range ps {
				ps[i] = []byte("Rhubarb")
			}
			f := batchOf("a", 1, ps...)
			b.ReportAllocs()
			b.SetBytes(int64(len(f[2])))
			seq := uint64(1)
			for i := 0; i < b.N; i++ {
				if err := h.AppendBatch("a", seq, per, f[1], f[2]); err != nil {
					b.Fatal(err)
				}
				seq += uint64(per)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*per), "ns/record")
		})
	}
}

func BenchmarkHistoryBatches(b *testing.B) {
	h := mustHistory(b, HistoryConfig{MaxMessages: 200_000, MaxBytes: 64 << 20, MaxTopics: 1})
	appendRun(b, h, "a", 1, 100_000, 1000)
	buf := make([]byte, 0, 256<<10)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.Batches("a", 1, 100_000, func(bt Batch) bool {
			buf = append(append(buf[:0], bt.Header...), bt.Payload...)
			return true
		})
	}
	b.ReportMetric(float64(b.N)*100_000/b.Elapsed().Seconds(), "records/s")
}
