package coord

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

// TestCoreForward: records published with a chosen sequence come out in
// batches that never span a skipped range; the tables name a skip only
// once everything accepted before it was taken; a LOSS is queued before
// the batch that follows it; sequences at or below the last are refused.
func TestCoreForward(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0 })
	c := h.c
	for _, seq := range []uint64{5, 6} {
		if err := c.publishSeq("a", seq, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.publishLoss(envelope.Loss{Topic: "a", From: 7, To: 9, Cause: "timeout"}); err != nil {
		t.Fatal(err)
	}
	if err := c.publishSeq("a", 10, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.skip("a", 12); err != nil { // a lost tail
		t.Fatal(err)
	}
	if table := c.table(nil); len(table) != 1 || table[0].Seq != 0 {
		t.Fatalf("before the take the ACK table says %+v", table)
	}
	batches := c.take(nil)
	var runs [][2]uint64
	for _, m := range batches {
		m.finish(0)
		m.eachRun(func(r *outRun) { runs = append(runs, [2]uint64{r.seq, uint64(r.count)}) })
	}
	if len(runs) != 2 || runs[0] != [2]uint64{5, 2} || runs[1] != [2]uint64{10, 1} {
		t.Fatalf("runs %v, want 5+2 and 10+1", runs)
	}
	losses := c.takeLosses(nil)
	if len(losses) != 1 || losses[0].before != batches[1].gen {
		t.Fatalf("losses %+v, want one before batch %d", losses, batches[1].gen)
	}
	if l, err := envelope.ParseLoss(losses[0].payload); err != nil || l.From != 7 || l.To != 9 || l.Cause != "timeout" {
		t.Fatalf("LOSS %+v %v", l, err)
	}
	if table := c.table(nil); table[0].Seq != 12 {
		t.Fatalf("after the take the ACK table says %d, want 12", table[0].Seq)
	}
	for _, bad := range []error{
		c.publishSeq("a", 12, []byte("x")),
		c.skip("a", 11),
		c.publishLoss(envelope.Loss{Topic: "a", From: 12, To: 13, Cause: "unknown"}),
	} {
		if !errors.Is(bad, ErrSequence) {
			t.Errorf("%v, want ErrSequence", bad)
		}
	}
	if err := c.publishSeq("b", 3, []byte("x")); err != nil { // a topic that starts late
		t.Fatal(err)
	}
	c.shutdown()
	c.take(nil) // END goes out once every batch was taken
	table, _ := c.end(h.now)
	want := map[string]uint64{"a": 12, "b": 3}
	for _, e := range table {
		if want[e.Topic] != e.Seq {
			t.Errorf("END: %s=%d, want %d", e.Topic, e.Seq, want[e.Topic])
		}
	}
}

// TestCoreForwardJournal: with DataDir a skip is refused at once, and
// changes nothing: the journal keeps every sequence from 1.
func TestCoreForwardJournal(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0; c.DataDir = t.TempDir() })
	c := h.c
	if err := c.publishSeq("a", 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		c.publishSeq("a", 3, []byte("x")),
		c.publishSeq("b", 2, []byte("x")),
		c.publishLoss(envelope.Loss{Topic: "a", From: 2, To: 2, Cause: "unknown"}),
	} {
		if !errors.Is(err, ErrSkipJournal) {
			t.Errorf("%v, want ErrSkipJournal", err)
		}
	}
	if c.topics["b"] != nil || c.topics["a"].seq != 1 {
		t.Fatalf("a refused skip changed the topics")
	}
}

// TestCoreForwardWhole: a DATA message forwarded whole goes out as a batch
// of its own, byte for byte as it came (its time and checksum kept),
// after the open batch and without joining the next one; a jump before
// it is a skip; it is refused below the topic's last sequence and with a
// record above MaxPayload.
func TestCoreForwardWhole(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0; c.MaxPayload = 8 })
	c := h.c
	encode := func(seq uint64, payloads ...string) (envelope.Message, [][]byte) {
		var b envelope.Builder
		b.Begin(nil, "a", envelope.Header{Kind: envelope.KindData, Publisher: c.cfg.ID, Epoch: c.cfg.Epoch, Seq: seq, Time: 12345})
		for _, p := range payloads {
			b.Add([]byte(p))
		}
		f, _ := b.Finish()
		m, err := envelope.Decode(f[:], envelope.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return m, f[:]
	}
	if err := c.publishSeq("a", 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	whole, want := encode(4, "p4", "p5", "p6")
	if err := c.forwardData(&whole); err != nil {
		t.Fatal(err)
	}
	if err := c.publishSeq("a", 7, []byte("y")); err != nil {
		t.Fatal(err)
	}
	batches := c.take(nil)
	if len(batches) != 3 {
		t.Fatalf("%d batches, want 3: the open one, the whole message, the next", len(batches))
	}
	for _, m := range batches {
		m.finish(99999)
	}
	if got := batches[1].frames; !framesEqual(got, want) {
		t.Fatalf("forwarded\n% x\nwant\n% x", got, want)
	}
	if table := c.table(nil); table[0].Seq != 7 {
		t.Fatalf("the ACK table says %d, want 7", table[0].Seq)
	}
	old, _ := encode(7, "z")
	big, _ := encode(8, "123456789")
	if err := c.forwardData(&old); !errors.Is(err, ErrSequence) {
		t.Errorf("%v, want ErrSequence", err)
	}
	if err := c.forwardData(&big); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("%v, want ErrPayloadTooLarge", err)
	}
}

func framesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

// TestCoreForwardWholeMulti: a MULTI forwarded whole goes out byte for
// byte, its runs as the DATA messages connections on the DATA form get,
// and moves every topic in it; a MULTI of one topic is refused as not
// whole, changing nothing.
func TestCoreForwardWholeMulti(t *testing.T) {
	h := newCoreHarness(t, func(c *PublisherConfig) { c.Expect = 0 })
	c := h.c
	var bb envelope.BatchBuilder
	bb.Reset(nil, nil, envelope.Header{Publisher: c.cfg.ID, Epoch: c.cfg.Epoch, Time: 777})
	a, b := bb.AddTopic("a", 3), bb.AddTopic("b", 1)
	for _, e := range []int{a, b, b, a} {
		bb.Add(e, []byte("p"))
	}
	want, _, _ := bb.Finish(nil)
	m, err := envelope.Decode(want, envelope.Limits{})
	if err != nil || m.Kind != envelope.KindMulti {
		t.Fatalf("%v %v", m.Kind, err)
	}
	if err := c.forwardData(&m); err != nil {
		t.Fatal(err)
	}
	batches := c.take(nil)
	if len(batches) != 1 {
		t.Fatalf("%d batches", len(batches))
	}
	batches[0].finish(1)
	if !framesEqual(batches[0].frames, want) {
		t.Fatalf("forwarded\n% x\nwant\n% x", batches[0].frames, want)
	}
	var runs [][2]uint64
	batches[0].eachRun(func(r *outRun) { runs = append(runs, [2]uint64{r.seq, uint64(r.count)}) })
	if len(runs) != 3 || runs[0] != [2]uint64{3, 1} || runs[1] != [2]uint64{1, 2} || runs[2] != [2]uint64{4, 1} {
		t.Fatalf("runs %v", runs)
	}
	got := map[string]uint64{}
	for _, e := range c.table(nil) {
		got[e.Topic] = e.Seq
	}
	if got["a"] != 4 || got["b"] != 2 {
		t.Fatalf("tables %v, want a=4 b=2", got)
	}

	// One topic in a MULTI: what no BatchBuilder makes.
	idx := binary.BigEndian.AppendUint16(nil, 1)
	idx = append(append(idx, 1, 'c'), binary.BigEndian.AppendUint64(nil, 1)...)
	idx = binary.BigEndian.AppendUint16(idx, 0)
	rec := binary.BigEndian.AppendUint32(nil, 1)
	rec = append(rec, 'x')
	hdr := envelope.Header{Kind: envelope.KindMulti, Count: 1, Publisher: c.cfg.ID, Epoch: c.cfg.Epoch,
		Len: uint32(len(idx) + len(rec)), CRC: crc32.Update(envelope.Checksum(idx), crc32.MakeTable(crc32.Castagnoli), rec)}
	one, err := envelope.Decode([][]byte{[]byte("c"), envelope.AppendHeader(nil, &hdr), idx, rec}, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.forwardData(&one); !errors.Is(err, ErrNotWhole) {
		t.Fatalf("%v, want ErrNotWhole", err)
	}
	if c.topics["c"] != nil {
		t.Fatal("a refused message added its topic")
	}
}
