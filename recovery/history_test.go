package recovery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

type held struct {
	seq     uint64
	t       int64
	payload string
}

func collect(h *History, topic string, from, to uint64) ([]held, uint64, uint64, bool) {
	var got []held
	first, last, ok := h.Range(topic, from, to, func(seq uint64, t int64, p []byte) bool {
		got = append(got, held{seq, t, string(p)})
		return true
	})
	return got, first, last, ok
}

func mustHistory(t testing.TB, cfg HistoryConfig) *History {
	t.Helper()
	h, err := NewHistory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func appendN(t testing.TB, h *History, topic string, from, to uint64) {
	t.Helper()
	for q := from; q <= to; q++ {
		if err := h.Append(topic, q, int64(q)*10, payloadOf(q)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHistoryConfigValidate(t *testing.T) {
	if err := DefaultHistoryConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []HistoryConfig{
		{MaxMessages: -1, MaxTopics: 1},
		{MaxMessages: 1, MaxBytes: -1, MaxTopics: 1},
		{MaxMessages: 1, MaxTopics: 0},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: Validate = %v", c, err)
		}
		if _, err := NewHistory(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: NewHistory = %v", c, err)
		}
	}
}

func TestHistoryRange(t *testing.T) {
	h := mustHistory(t, DefaultHistoryConfig())
	appendN(t, h, "a", 1, 5)
	got, first, last, ok := collect(h, "a", 2, 4)
	if !ok || first != 1 || last != 5 {
		t.Fatalf("bounds = %d, %d, %v", first, last, ok)
	}
	want := []held{{2, 20, "p2"}, {3, 30, "p3"}, {4, 40, "p4"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, c := range []struct {
		from, to uint64
		n        int
	}{{0, 100, 5}, {5, 5, 1}, {6, 9, 0}, {4, 2, 0}, {0, 0, 0}, {3, ^uint64(0), 3}} {
		if got, _, _, _ := collect(h, "a", c.from, c.to); len(got) != c.n {
			t.Errorf("Range(%d, %d) gave %d records, want %d", c.from, c.to, len(got), c.n)
		}
	}
	// Stop early.
	n := 0
	h.Range("a", 1, 5, func(uint64, int64, []byte) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("fn called %d times after returning false", n)
	}
	// Bounds only.
	if first, last, ok := h.Range("a", 1, 5, nil); first != 1 || last != 5 || !ok {
		t.Fatalf("nil fn: %d, %d, %v", first, last, ok)
	}
	if _, _, ok := h.Range("b", 1, 5, nil); ok {
		t.Fatal("unknown topic reported known")
	}
}

func TestHistoryEvictsByCount(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 3, MaxTopics: 10})
	appendN(t, h, "a", 1, 5)
	got, first, last, _ := collect(h, "a", 1, 5)
	if first != 3 || last != 5 || len(got) != 3 {
		t.Fatalf("held %d..%d (%d)", first, last, len(got))
	}
	if st := h.Stats(); st != (HistoryStats{Topics: 1, Messages: 3, Bytes: 6, Evicted: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistoryEvictsByBytes(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 100, MaxBytes: 10, MaxTopics: 10})
	for q := uint64(1); q <= 5; q++ {
		if err := h.Append("a", q, 0, []byte("1234")); err != nil {
			t.Fatal(err)
		}
	}
	first, last, _ := h.Range("a", 0, 10, nil)
	if first != 4 || last != 5 {
		t.Fatalf("held %d..%d, want 4..5", first, last)
	}
	if st := h.Stats(); st.Bytes != 8 || st.Messages != 2 || st.Evicted != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistoryRejectsOutOfOrder(t *testing.T) {
	h := mustHistory(t, DefaultHistoryConfig())
	appendN(t, h, "a", 1, 3)
	for _, q := range []uint64{0, 2, 3} {
		if err := h.Append("a", q, 0, []byte("x")); !errors.Is(err, ErrOutOfOrder) {
			t.Errorf("Append(%d) = %v, want ErrOutOfOrder", q, err)
		}
	}
	if err := h.Append("new", 0, 0, nil); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("Append(new, 0) = %v", err)
	}
	got, first, last, _ := collect(h, "a", 1, 3)
	if first != 1 || last != 3 || got[2].payload != "p3" {
		t.Fatalf("history changed: %v", got)
	}
	if st := h.Stats(); st.Rejected != 4 || st.Topics != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistorySkipKeepsContiguous(t *testing.T) {
	h := mustHistory(t, DefaultHistoryConfig())
	appendN(t, h, "a", 1, 3)
	appendN(t, h, "a", 7, 8)
	got, first, last, _ := collect(h, "a", 0, 10)
	if first != 7 || last != 8 || len(got) != 2 {
		t.Fatalf("held %d..%d %v", first, last, got)
	}
	if st := h.Stats(); st.Evicted != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistoryTooLarge(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 10, MaxBytes: 10, MaxTopics: 10})
	appendN(t, h, "a", 1, 2)
	if err := h.Append("a", 3, 0, make([]byte, 11)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append = %v, want ErrTooLarge", err)
	}
	if first, last, ok := h.Range("a", 0, 10, nil); first != 0 || last != 0 || !ok {
		t.Fatalf("after too large: %d..%d %v, want empty but known", first, last, ok)
	}
	if err := h.Append("a", 3, 0, nil); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("re-Append(3) = %v: the rejected seq still counts", err)
	}
	appendN(t, h, "a", 4, 4)
	if first, last, _ := h.Range("a", 0, 10, nil); first != 4 || last != 4 {
		t.Fatalf("held %d..%d, want 4..4", first, last)
	}
	if st := h.Stats(); st.Messages != 1 || st.Bytes != 2 || st.Evicted != 2 || st.Rejected != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistoryMaxTopics(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 10, MaxTopics: 2})
	appendN(t, h, "a", 1, 2)
	appendN(t, h, "b", 1, 3)
	appendN(t, h, "a", 3, 3) // a is now the most recent
	appendN(t, h, "c", 1, 1) // evicts b
	if _, _, ok := h.Range("b", 0, 9, nil); ok {
		t.Fatal("b still known")
	}
	for _, topic := range []string{"a", "c"} {
		if _, _, ok := h.Range(topic, 0, 9, nil); !ok {
			t.Fatalf("%s forgotten", topic)
		}
	}
	got, _, _, _ := collect(h, "c", 0, 9)
	if len(got) != 1 || got[0].payload != "p1" {
		t.Fatalf("c = %v", got)
	}
	appendN(t, h, "b", 1, 1) // b starts afresh and evicts a
	if st := h.Stats(); st != (HistoryStats{Topics: 2, Messages: 2, Bytes: 4, Evicted: 6, EvictedTopics: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistoryRetentionOff(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 0, MaxTopics: 1})
	appendN(t, h, "a", 1, 3)
	if _, _, ok := h.Range("a", 0, 9, nil); ok {
		t.Fatal("retention off, yet topic known")
	}
	if st := h.Stats(); st != (HistoryStats{}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistoryCopiesPayload(t *testing.T) {
	h := mustHistory(t, DefaultHistoryConfig())
	buf := []byte("abc")
	if err := h.Append("a", 1, 0, buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XYZ")
	if got, _, _, _ := collect(h, "a", 1, 1); got[0].payload != "abc" {
		t.Fatalf("payload %q, want abc", got[0].payload)
	}
}

// TestHistoryModel appends random payloads, including ones larger than an
// arena chunk, under random limits and compares every Range with a model.
func TestHistoryModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		cfg := HistoryConfig{MaxMessages: 1 + r.IntN(200), MaxTopics: 1 + r.IntN(4)}
		if r.IntN(2) == 0 {
			cfg.MaxBytes = int64(1 + r.IntN(3*arenaChunk))
		}
		h := mustHistory(t, cfg)
		model := map[string][]held{}
		last := map[string]uint64{}
		topics := []string{"t0", "t1", "t2", "t3", "t4"}
		for i := 0; i < 2000; i++ {
			topic := topics[r.IntN(len(topics))]
			if _, _, ok := h.Range(topic, 0, 0, nil); !ok {
				delete(model, topic) // forgotten as least recently used
				delete(last, topic)
			}
			seq := last[topic] + 1
			if r.IntN(20) == 0 {
				seq += uint64(r.IntN(5)) // skip ahead
			}
			n := r.IntN(300)
			if r.IntN(50) == 0 {
				n = arenaChunk + r.IntN(arenaChunk)
			}
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(seq) + byte(j)
			}
			err := h.Append(topic, seq, int64(seq), p)
			last[topic] = seq
			m := model[topic]
			if len(m) > 0 && m[len(m)-1].seq+1 != seq {
				m = nil
			}
			if err != nil {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatal(err)
				}
				model[topic] = nil
				continue
			}
			m = append(m, held{seq, int64(seq), string(p)})
			var size int64
			for _, e := range m {
				size += int64(len(e.payload))
			}
			for len(m) > cfg.MaxMessages || (cfg.MaxBytes > 0 && size > cfg.MaxBytes) {
				size -= int64(len(m[0].payload))
				m = m[1:]
			}
			model[topic] = m
			if r.IntN(10) == 0 {
				got, first, lastHeld, ok := collect(h, topic, 0, ^uint64(0))
				if !ok || len(got) != len(m) {
					t.Fatalf("round %d step %d %s: %d held, model %d", round, i, topic, len(got), len(m))
				}
				for j := range got {
					if got[j] != m[j] {
						t.Fatalf("round %d step %d %s: record %d differs (seq %d vs %d)", round, i, topic, j, got[j].seq, m[j].seq)
					}
				}
				if len(m) > 0 && (first != m[0].seq || lastHeld != m[len(m)-1].seq) {
					t.Fatalf("bounds %d..%d, model %d..%d", first, lastHeld, m[0].seq, m[len(m)-1].seq)
				}
			}
		}
		var msgs int
		var bytes int64
		for topic, m := range model {
			if _, _, ok := h.Range(topic, 0, 0, nil); !ok {
				continue // forgotten as least recently used
			}
			msgs += len(m)
			for _, e := range m {
				bytes += int64(len(e.payload))
			}
		}
		if st := h.Stats(); st.Messages != msgs || st.Bytes != bytes || st.Topics > cfg.MaxTopics {
			t.Fatalf("round %d: stats %+v, model %d msgs %d bytes", round, st, msgs, bytes)
		}
	}
}

// TestHistoryConcurrentReaders runs one writer against readers that check
// every payload they see matches its sequence; run it with -race.
func TestHistoryConcurrentReaders(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 500, MaxBytes: 4096, MaxTopics: 4})
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
				h.Range("a", 0, n, func(seq uint64, _ int64, p []byte) bool {
					if len(p) != 8 || binary.BigEndian.Uint64(p) != seq {
						select {
						case errs <- fmt.Errorf("seq %d payload % x", seq, p):
						default:
						}
						return false
					}
					return true
				})
				h.Stats()
			}
		}()
	}
	var buf [8]byte
	for q := uint64(1); q <= n; q++ {
		binary.BigEndian.PutUint64(buf[:], q)
		if err := h.Append("a", q, 0, buf[:]); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestHistoryAppendDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	h := mustHistory(t, HistoryConfig{MaxMessages: 1000, MaxBytes: 1 << 20, MaxTopics: 10})
	p := bytes.Repeat([]byte{'x'}, 200)
	seq := uint64(0)
	for ; seq < 5000; seq++ { // warm up: reach the limits, fill the chunk pool
		_ = h.Append("a", seq+1, 0, p)
	}
	allocs := testing.AllocsPerRun(10000, func() {
		seq++
		_ = h.Append("a", seq, 0, p)
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %v times per call in steady state", allocs)
	}
}

func BenchmarkHistoryAppend(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("1topic/%dB", size), func(b *testing.B) {
			h := mustHistory(b, HistoryConfig{MaxMessages: 10_000, MaxBytes: 64 << 20, MaxTopics: 10})
			p := make([]byte, size)
			seq := uint64(0)
			for ; seq < 20_000; seq++ {
				_ = h.Append("topic", seq+1, 0, p)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq++
				if err := h.Append("topic", seq, int64(i), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("100topics/256B", func(b *testing.B) {
		h := mustHistory(b, HistoryConfig{MaxMessages: 1000, MaxBytes: 1 << 20, MaxTopics: 100})
		topics := make([]string, 100)
		for i := range topics {
			topics[i] = fmt.Sprintf("topic.%03d", i)
		}
		seqs := make([]uint64, len(topics))
		p := make([]byte, 256)
		for i := 0; i < 300_000; i++ {
			k := i % len(topics)
			seqs[k]++
			_ = h.Append(topics[k], seqs[k], 0, p)
		}
		b.SetBytes(int64(len(p)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := i % len(topics)
			seqs[k]++
			if err := h.Append(topics[k], seqs[k], 0, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHistoryRange(b *testing.B) {
	h := mustHistory(b, HistoryConfig{MaxMessages: 100_000, MaxTopics: 1})
	p := make([]byte, 128)
	for q := uint64(1); q <= 100_000; q++ {
		_ = h.Append("t", q, 0, p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for i := 0; i < b.N; i++ {
		from := uint64(i%99_000) + 1
		h.Range("t", from, from+999, func(uint64, int64, []byte) bool { n++; return true })
	}
	b.ReportMetric(float64(n)/float64(b.N), "records/op")
}
