package envelope_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

// multiRec is one record of a MULTI message as a test describes it.
type multiRec struct {
	topic   string
	seq     uint64
	payload string
}

// buildBatch builds recs, in order, with a BatchBuilder: a topic's first
// appearance adds its table entry at the record's sequence.
func buildBatch(b *envelope.BatchBuilder, recs []multiRec) [][]byte {
	b.Reset(nil, nil, envelope.Header{Publisher: testPub, Epoch: 42, Time: testTime})
	entry := map[string]int{}
	for _, r := range recs {
		e, ok := entry[r.topic]
		if !ok {
			e = b.AddTopic(r.topic, r.seq)
			entry[r.topic] = e
		}
		b.Add(e, []byte(r.payload))
	}
	frames, _, _ := b.Finish(nil)
	return frames
}

// multiFrames encodes a MULTI message by hand, bypassing BatchBuilder, so
// tests can produce what it never would. Len and CRC match the frames.
func multiFrames(prefix string, table []envelope.TopicSeq, order []uint16, payloads ...string) [][]byte {
	idx := binary.BigEndian.AppendUint16(nil, uint16(len(table)))
	for _, e := range table {
		idx = append(idx, byte(len(e.Topic)))
		idx = append(idx, e.Topic...)
		idx = binary.BigEndian.AppendUint64(idx, e.Seq)
	}
	for _, o := range order {
		idx = binary.BigEndian.AppendUint16(idx, o)
	}
	return multiWith(prefix, idx, recs(payloads...), uint16(len(order)))
}

func multiWith(prefix string, idx, rec []byte, count uint16) [][]byte {
	h := envelope.Header{Kind: envelope.KindMulti, Count: count, Publisher: testPub, Epoch: 42, Time: testTime,
		Len: uint32(len(idx) + len(rec)), CRC: crc32.Update(envelope.Checksum(idx), crc32.MakeTable(crc32.Castagnoli), rec)}
	return [][]byte{[]byte(prefix), envelope.AppendHeader(nil, &h), idx, rec}
}

func validMulti() [][]byte {
	return multiFrames("t", []envelope.TopicSeq{{Topic: "t1", Seq: 5}, {Topic: "t2", Seq: 9}}, []uint16{0, 1, 0}, "a", "bb", "")
}

// decodedRecords lists what a decoded MULTI message carries.
func decodedRecords(m *envelope.Message) []multiRec {
	table := m.MultiTopics(nil)
	next := make([]uint64, len(table))
	for i, e := range table {
		next[i] = e.First
	}
	var out []multiRec
	for e, p := range m.MultiRecords() {
		out = append(out, multiRec{string(table[e].Topic), next[e], string(p)})
		next[e]++
	}
	return out
}

func TestMultiRoundTrip(t *testing.T) {
	recs := []multiRec{
		{"prices.eur", 10, "1.08"}, {"prices.usd", 3, "1"}, {"prices.eur", 11, ""},
		{"prices.gbp", 1, "0.85"}, {"prices.usd", 4, "1.0001"}, {"prices.eur", 12, "1.09"},
	}
	var b envelope.BatchBuilder
	frames := buildBatch(&b, recs)
	if len(frames) != 4 || string(frames[0]) != "prices." {
		t.Fatalf("frames %q, want 4 with prefix %q", frames[:1], "prices.")
	}
	m, err := envelope.Decode(frames, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != envelope.KindMulti || int(m.Count) != len(recs) || m.Seq != 0 || m.Flags != 0 || m.Time != testTime || m.Publisher != testPub {
		t.Fatalf("header %+v", m.Header)
	}
	if got := decodedRecords(&m); !slices.Equal(got, recs) {
		t.Fatalf("records\n got %v\nwant %v", got, recs)
	}
	for i, e := range m.MultiTopics(nil) {
		if name, first, n := b.Topic(i); string(e.Topic) != name || e.First != first || n == 0 {
			t.Errorf("entry %d = %q %d, builder has %q %d (%d records)", i, e.Topic, e.First, name, first, n)
		}
	}
}

// TestBatchBuilderOneTopicIsData: records of one topic make exactly the
// DATA message Builder makes, single or batched, so nothing changes for
// a 1.0 receiver.
func TestBatchBuilderOneTopicIsData(t *testing.T) {
	for _, payloads := range [][]string{{"solo"}, {"a", "", "ccc"}} {
		var bb envelope.BatchBuilder
		bb.Reset(nil, nil, envelope.Header{Publisher: testPub, Epoch: 42, Time: testTime})
		e := bb.AddTopic("orders.eu", 7)
		var b envelope.Builder
		b.Begin(nil, "orders.eu", envelope.Header{Kind: envelope.KindData, Publisher: testPub, Epoch: 42, Seq: 7, Time: testTime})
		for _, p := range payloads {
			bb.Add(e, []byte(p))
			b.Add([]byte(p))
		}
		got, _, _ := bb.Finish(nil)
		want, _ := b.Finish()
		if !framesEqual(got, want[:]) {
			t.Errorf("%q: BatchBuilder\n% x\nBuilder\n% x", payloads, got, want[:])
		}
	}
}

func TestMultiPrefix(t *testing.T) {
	for _, c := range []struct {
		topics []string
		want   string
	}{
		{[]string{"a.b.c", "a.b.d"}, "a.b."},
		{[]string{"a.b", "a.b.c"}, "a.b"},
		{[]string{"x", "y"}, ""},
		{[]string{"t1", "t10", "t100", "t2"}, "t"},
	} {
		var recs []multiRec
		for _, tp := range c.topics {
			recs = append(recs, multiRec{tp, 1, "p"})
		}
		var b envelope.BatchBuilder
		frames := buildBatch(&b, recs)
		if string(frames[0]) != c.want {
			t.Errorf("%q: prefix %q, want %q", c.topics, frames[0], c.want)
		}
		if _, err := envelope.Decode(frames, envelope.Limits{}); err != nil {
			t.Errorf("%q: %v", c.topics, err)
		}
	}
}

func TestMultiDecodeErrors(t *testing.T) {
	table := []envelope.TopicSeq{{Topic: "t1", Seq: 5}, {Topic: "t2", Seq: 9}}
	v := validMulti()
	withHeader := func(f func([]byte)) [][]byte {
		h := slices.Clone(v[1])
		f(h)
		return [][]byte{v[0], h, v[2], v[3]}
	}
	for _, c := range []struct {
		name   string
		frames [][]byte
		lim    envelope.Limits
		want   error
	}{
		{"three frames", v[:3], envelope.Limits{}, envelope.ErrFrameCount},
		{"data header in four frames", [][]byte{[]byte("t1"), validData()[1], v[2], v[3]}, envelope.Limits{}, envelope.ErrFrameCount},
		{"flags", withHeader(setU16(4, uint16(envelope.FlagReplay))), envelope.Limits{}, envelope.ErrFlags},
		{"count 0", withHeader(setU16(6, 0)), envelope.Limits{}, envelope.ErrRecords},
		{"seq", withHeader(func(h []byte) { h[39] = 1 }), envelope.Limits{}, envelope.ErrSequence},
		{"len", withHeader(setU32(48, 1)), envelope.Limits{}, envelope.ErrPayloadSize},
		{"crc", withHeader(setU32(52, 1)), envelope.Limits{}, envelope.ErrChecksum},
		{"over payload limit", v, envelope.Limits{MaxPayload: 10}, envelope.ErrPayloadSize},
		{"prefix leading zero", multiFrames("\x00", table, []uint16{0}, "a"), envelope.Limits{}, envelope.ErrTopic},
		{"prefix over limit", multiFrames("t1", []envelope.TopicSeq{{Topic: "t1", Seq: 1}}, []uint16{0}, "a"), envelope.Limits{MaxTopic: 1}, envelope.ErrTopic},
		{"topic not under prefix", multiFrames("t1", table, []uint16{0, 1}, "a", "b"), envelope.Limits{}, envelope.ErrTopic},
		{"topic over limit", multiFrames("", table, []uint16{0, 1}, "a", "b"), envelope.Limits{MaxTopic: 1}, envelope.ErrTopic},
		{"topic leading zero", multiFrames("", []envelope.TopicSeq{{Topic: "\x00x", Seq: 1}}, []uint16{0}, "a"), envelope.Limits{}, envelope.ErrTopic},
		{"empty topic", multiFrames("", []envelope.TopicSeq{{Topic: "", Seq: 1}}, []uint16{0}, "a"), envelope.Limits{}, envelope.ErrTopic},
		{"first 0", multiFrames("", []envelope.TopicSeq{{Topic: "a", Seq: 0}}, []uint16{0}, "a"), envelope.Limits{}, envelope.ErrSequence},
		{"first overflows", multiFrames("", []envelope.TopicSeq{{Topic: "a", Seq: math.MaxUint64}}, []uint16{0, 0}, "a", "b"), envelope.Limits{}, envelope.ErrSequence},
		{"no entries", multiFrames("", nil, []uint16{0}, "a"), envelope.Limits{}, envelope.ErrIndex},
		{"more entries than records", multiFrames("t", table, []uint16{0}, "a"), envelope.Limits{}, envelope.ErrIndex},
		{"entry out of range", multiFrames("t", table, []uint16{0, 2}, "a", "b"), envelope.Limits{}, envelope.ErrIndex},
		{"index truncated", multiWith("t", v[2][:5], v[3], 3), envelope.Limits{}, envelope.ErrIndex},
		{"index one byte", multiWith("t", []byte{0}, v[3], 3), envelope.Limits{}, envelope.ErrIndex},
		{"order short", multiWith("t", v[2][:len(v[2])-2], v[3], 3), envelope.Limits{}, envelope.ErrIndex},
		{"order long", multiWith("t", append(slices.Clone(v[2]), 0, 0), v[3], 3), envelope.Limits{}, envelope.ErrIndex},
		{"record truncated", multiWith("t", v[2], v[3][:len(v[3])-1], 3), envelope.Limits{}, envelope.ErrRecords},
		{"trailing record bytes", multiWith("t", v[2], append(slices.Clone(v[3]), 0), 3), envelope.Limits{}, envelope.ErrRecords},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := envelope.Decode(c.frames, c.lim)
			checkSentinel(t, err, c.want)
		})
	}
	if _, err := envelope.Decode(v, envelope.Limits{}); err != nil {
		t.Fatalf("the valid fixture: %v", err)
	}
}

// TestMultiDuplicateEntries: two entries may name one topic; each is a
// run of its own, as two DATA messages of that topic would be.
func TestMultiDuplicateEntries(t *testing.T) {
	fr := multiFrames("a", []envelope.TopicSeq{{Topic: "a", Seq: 1}, {Topic: "a", Seq: 3}}, []uint16{0, 1, 0}, "x", "y", "z")
	m, err := envelope.Decode(fr, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []multiRec{{"a", 1, "x"}, {"a", 3, "y"}, {"a", 2, "z"}}
	if got := decodedRecords(&m); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestMultiRandomRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b envelope.BatchBuilder
	for range 500 {
		topics := make([]string, 1+rng.IntN(8))
		next := make(map[string]uint64, len(topics))
		for i := range topics {
			tp := "p." + randTopic(rng)
			topics[i] = tp[:min(len(tp), envelope.DefaultLimits.MaxTopic)]
			next[topics[i]] = 1 + rng.Uint64N(1<<40)
		}
		var recs []multiRec
		for range 1 + rng.IntN(50) {
			tp := topics[rng.IntN(len(topics))]
			recs = append(recs, multiRec{tp, next[tp], string(randBytes(rng, rng.IntN(40)))})
			next[tp]++
		}
		frames := buildBatch(&b, recs)
		m, err := envelope.Decode(frames, envelope.Limits{})
		if err != nil {
			t.Fatalf("%v: %v", recs, err)
		}
		var got []multiRec
		if m.Kind == envelope.KindData {
			for seq, p := range m.Records() {
				got = append(got, multiRec{string(m.Topic), seq, string(p)})
			}
		} else {
			got = decodedRecords(&m)
		}
		if !slices.Equal(got, recs) {
			t.Fatalf("got %v\nwant %v", got, recs)
		}
	}
}

func TestMultiAllocs(t *testing.T) {
	var b envelope.BatchBuilder
	rec, meta := make([]byte, 0, 64<<10), make([]byte, 0, 4<<10)
	var frames [][]byte
	payload := make([]byte, 100)
	names := []string{"t0", "t1", "t2", "t3"}
	allocs := testing.AllocsPerRun(100, func() {
		b.Reset(rec, meta, envelope.Header{Publisher: testPub, Epoch: 1})
		for i := range 64 {
			if i < len(names) {
				b.AddTopic(names[i], 1)
			}
			b.Add(i%len(names), payload)
		}
		frames, rec, meta = b.Finish(frames)
	})
	if allocs != 0 {
		t.Errorf("BatchBuilder into reused buffers: %v allocs/op, want 0", allocs)
	}
	var table []envelope.MultiTopic
	n := 0
	allocs = testing.AllocsPerRun(100, func() {
		m, err := envelope.Decode(frames, envelope.Limits{})
		if err != nil {
			panic(err)
		}
		table = m.MultiTopics(table[:0])
		for e, p := range m.MultiRecords() {
			n += e + len(p)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode+MultiTopics+MultiRecords: %v allocs/op, want 0", allocs)
	}
}

// multiFuzzSeeds are the MULTI messages FuzzDecodeMulti starts from.
func multiFuzzSeeds() [][][]byte {
	var b envelope.BatchBuilder
	table := []envelope.TopicSeq{{Topic: "t1", Seq: 5}, {Topic: "t2", Seq: 9}}
	return [][][]byte{
		validMulti(),
		buildBatch(&b, []multiRec{{"a.x", 1, "p"}, {"a.y", 1, "q"}, {"a.x", 2, ""}}),
		buildBatch(&b, []multiRec{{"x", 1 << 40, "left"}, {"y", 7, "right"}}),
		multiFrames("a", []envelope.TopicSeq{{Topic: "a", Seq: 1}, {Topic: "a", Seq: 3}}, []uint16{0, 1, 0}, "x", "y", "z"),
		// Each breaks one rule.
		multiFrames("t1", table, []uint16{0, 1}, "a", "b"),
		multiFrames("t", table, []uint16{0, 2}, "a", "b"),
		multiFrames("", []envelope.TopicSeq{{Topic: "a", Seq: 0}}, []uint16{0}, "a"),
		multiFrames("t", table, []uint16{0}, "a"),
	}
}

// FuzzDecodeMulti feeds the MULTI decoder arbitrary frames. It must never
// panic or change its input, every error must wrap exactly one sentinel,
// and an accepted message must keep every promise: the topics start with
// frame 0, the records fill frame 3, and a BatchBuilder fed the decoded
// records reproduces the message (or, for one topic, its DATA form).
func FuzzDecodeMulti(f *testing.F) {
	for _, s := range multiFuzzSeeds() {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, prefix, header, index, records []byte) {
		check := func(frames [][]byte) {
			checkDecodeInProcess(t, frames, envelope.Limits{})
			orig := cloneFrames(frames)
			m, err := envelope.Decode(frames, envelope.Limits{})
			if !framesEqual(frames, orig) {
				t.Fatal("Decode modified its input")
			}
			if err != nil {
				if got := wrappedSentinels(err); len(got) != 1 {
					t.Fatalf("error %q wraps %d sentinels, want exactly one", err, len(got))
				}
				return
			}
			if m.Kind != envelope.KindMulti {
				t.Fatalf("four frames decoded as %v", m.Kind)
			}
			table := m.MultiTopics(nil)
			for i, e := range table {
				if len(e.Topic) == 0 || e.Topic[0] == 0 || !bytes.HasPrefix(e.Topic, m.Topic) || e.First == 0 {
					t.Fatalf("entry %d accepted: %q from %d under prefix %q", i, e.Topic, e.First, m.Topic)
				}
			}
			n := 0
			for e, p := range m.MultiRecords() {
				if e >= len(table) {
					t.Fatalf("record %d names entry %d of %d", n, e, len(table))
				}
				_ = p
				n++
			}
			if n != int(m.Count) {
				t.Fatalf("%d records, header says %d", n, m.Count)
			}
		}
		check([][]byte{prefix, header, index, records})
		// The same frames with Len and CRC fixed, so mutations reach the
		// index and record checks behind the checksum.
		if len(header) == envelope.HeaderSize {
			fixed := slices.Clone(header)
			binary.BigEndian.PutUint32(fixed[48:], uint32(len(index)+len(records)))
			binary.BigEndian.PutUint32(fixed[52:], crc32.Update(envelope.Checksum(index), crc32.MakeTable(crc32.Castagnoli), records))
			check([][]byte{prefix, fixed, index, records})
		}
	})
}

// TestBatchBuilderResetDataIsVerbatim: a decoded DATA message taken whole
// finishes as the same frames, byte for byte, time and checksum
// included, single or batched; a REPLAY flag is dropped and SetTime
// changes nothing.
func TestBatchBuilderResetDataIsVerbatim(t *testing.T) {
	for _, payloads := range [][]string{{"solo"}, {""}, {"a", "", "ccc"}} {
		var b envelope.Builder
		b.Begin(nil, "orders.eu", envelope.Header{Kind: envelope.KindData, Publisher: testPub, Epoch: 42, Seq: 7, Time: testTime})
		for _, p := range payloads {
			b.Add([]byte(p))
		}
		want, _ := b.Finish()
		replayed := append([]byte(nil), want[1]...)
		envelope.SetFlags(replayed, envelope.FlagReplay)
		for _, hdr := range [][]byte{want[1], replayed} {
			m, err := envelope.Decode([][]byte{want[0], hdr, want[2]}, envelope.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var bb envelope.BatchBuilder
			bb.ResetData(nil, nil, &m)
			bb.SetTime(testTime + 1)
			if name, first, n := bb.Topic(0); name != "orders.eu" || first != 7 || n != len(payloads) || bb.Count() != len(payloads) || !bb.Verbatim() {
				t.Errorf("%q: topic %q first %d records %d count %d", payloads, name, first, n, bb.Count())
			}
			got, _, _ := bb.Finish(nil)
			if !framesEqual(got, want[:]) {
				t.Errorf("%q: ResetData\n% x\nwant\n% x", payloads, got, want[:])
			}
		}
	}
}

// TestBatchBuilderResetDataMulti: a decoded MULTI taken whole finishes
// as the same frames, and its table and runs are the original's.
func TestBatchBuilderResetDataMulti(t *testing.T) {
	recs := []multiRec{{"t.a", 5, "a5"}, {"t.b", 9, "b9"}, {"t.b", 10, "b10"}, {"t.a", 6, "a6"}, {"t.c", 1, ""}}
	var orig envelope.BatchBuilder
	want := buildBatch(&orig, recs)
	m, err := envelope.Decode(want, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var b envelope.BatchBuilder
	b.ResetData(nil, nil, &m)
	b.SetTime(testTime + 1)
	got, _, _ := b.Finish(nil)
	if !framesEqual(got, want) {
		t.Fatalf("ResetData\n% x\nwant\n% x", got, want)
	}
	if b.Topics() != 3 || b.Count() != len(recs) {
		t.Fatalf("%d topics, %d records", b.Topics(), b.Count())
	}
	type run struct {
		entry, count int
		seq          uint64
		records      string
	}
	runs := func(bb *envelope.BatchBuilder) (rs []run) {
		bb.EachRun(func(r envelope.Run) bool {
			rs = append(rs, run{r.Entry, r.Count, r.Seq, string(r.Records)})
			return true
		})
		return rs
	}
	if g, w := runs(&b), runs(&orig); !slices.Equal(g, w) {
		t.Fatalf("runs %v, want %v", g, w)
	}
}
