package envelope_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

// sentinels lists every error Decode and ParseTable may wrap.
var sentinels = []error{
	envelope.ErrFrameCount,
	envelope.ErrHeaderSize,
	envelope.ErrMagic,
	envelope.ErrVersion,
	envelope.ErrKind,
	envelope.ErrFlags,
	envelope.ErrTopic,
	envelope.ErrPayloadSize,
	envelope.ErrChecksum,
	envelope.ErrRecords,
	envelope.ErrSequence,
	envelope.ErrTable,
	envelope.ErrIndex,
	envelope.ErrLoss,
}

// wrappedSentinels returns the sentinels err wraps.
func wrappedSentinels(err error) []error {
	var got []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			got = append(got, s)
		}
	}
	return got
}

// checkSentinel fails t unless err wraps want and no other sentinel.
func checkSentinel(t testing.TB, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %v", err, want)
	}
	if got := wrappedSentinels(err); len(got) != 1 {
		t.Fatalf("error %q wraps %d sentinels %v, want exactly one", err, len(got), got)
	}
}

var testPub = envelope.ID{0x5e, 0x9a, 0x11, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}

const testTime = int64(1_700_000_000_123_456_789)

func dataHeader(seq uint64) envelope.Header {
	return envelope.Header{Kind: envelope.KindData, Count: 1, Publisher: testPub, Epoch: 42, Seq: seq, Time: testTime}
}

func controlHeader(k envelope.Kind) envelope.Header {
	return envelope.Header{Kind: k, Publisher: testPub, Epoch: 42, Time: testTime}
}

// handMade builds the frames of a message byte by byte, bypassing Builder,
// so tests can produce inputs Builder never would. Len and CRC are taken
// from payload.
func handMade(topic string, h envelope.Header, payload []byte) [][]byte {
	h.Len = uint32(len(payload))
	h.CRC = envelope.Checksum(payload)
	return [][]byte{[]byte(topic), envelope.AppendHeader(nil, &h), payload}
}

// recs returns the batch encoding of ps: each a 4-byte big-endian length
// and the bytes.
func recs(ps ...string) []byte {
	var b []byte
	for _, p := range ps {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

func encoded(topic string, h envelope.Header, payload []byte) [][]byte {
	fr, _ := envelope.Encode(nil, topic, h, payload)
	return fr[:]
}

func validData() [][]byte { return encoded("orders.eu", dataHeader(1), []byte("hello")) }

func validBatch() [][]byte {
	h := dataHeader(10)
	h.Flags = envelope.FlagBatch
	h.Count = 2
	return handMade("orders.eu", h, recs("a", "bc"))
}

func validHello() [][]byte {
	return encoded(envelope.ControlTopic, controlHeader(envelope.KindHello), bytes.Repeat([]byte{0xab}, envelope.NonceSize))
}

func validTable(k envelope.Kind) [][]byte {
	return encoded(envelope.ControlTopic, controlHeader(k), envelope.AppendTable(nil, []envelope.TopicSeq{{Topic: "a", Seq: 1}}))
}

// patchHeader returns frames with f applied to a copy of the header frame.
func patchHeader(frames [][]byte, f func(h []byte)) [][]byte {
	h := slices.Clone(frames[1])
	f(h)
	return [][]byte{frames[0], h, frames[2]}
}

func setU16(off int, v uint16) func([]byte) {
	return func(h []byte) { binary.BigEndian.PutUint16(h[off:], v) }
}

func setU32(off int, v uint32) func([]byte) {
	return func(h []byte) { binary.BigEndian.PutUint32(h[off:], v) }
}

func TestDecodeValidFixtures(t *testing.T) {
	for name, frames := range map[string][][]byte{
		"data":      validData(),
		"batch":     validBatch(),
		"hello":     validHello(),
		"heartbeat": validTable(envelope.KindHeartbeat),
		"end":       validTable(envelope.KindEnd),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := envelope.Decode(frames, envelope.Limits{}); err != nil {
				t.Fatalf("fixture does not decode: %v", err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	longTopic := strings.Repeat("t", envelope.DefaultLimits.MaxTopic+1)
	tests := []struct {
		name   string
		frames [][]byte
		lim    envelope.Limits
		want   error
	}{
		// ErrFrameCount
		{name: "frames/nil", frames: nil, want: envelope.ErrFrameCount},
		{name: "frames/none", frames: [][]byte{}, want: envelope.ErrFrameCount},
		{name: "frames/one", frames: validData()[:1], want: envelope.ErrFrameCount},
		{name: "frames/two", frames: validData()[:2], want: envelope.ErrFrameCount},
		{name: "frames/four", frames: append(validData(), []byte("x")), want: envelope.ErrFrameCount},

		// ErrHeaderSize
		{name: "header/empty", frames: [][]byte{[]byte("t"), nil, nil}, want: envelope.ErrHeaderSize},
		{name: "header/short", frames: func() [][]byte { f := validData(); f[1] = f[1][:envelope.HeaderSize-1]; return f }(), want: envelope.ErrHeaderSize},
		{name: "header/long", frames: func() [][]byte { f := validData(); f[1] = append(slices.Clone(f[1]), 0); return f }(), want: envelope.ErrHeaderSize},

		// ErrMagic
		{name: "magic/first", frames: patchHeader(validData(), func(h []byte) { h[0] = 'X' }), want: envelope.ErrMagic},
		{name: "magic/second", frames: patchHeader(validData(), func(h []byte) { h[1] = 'x' }), want: envelope.ErrMagic},
		{name: "magic/zero", frames: patchHeader(validData(), func(h []byte) { clear(h) }), want: envelope.ErrMagic},

		// ErrVersion
		{name: "version/0", frames: patchHeader(validData(), func(h []byte) { h[2] = 0 }), want: envelope.ErrVersion},
		{name: "version/2", frames: patchHeader(validData(), func(h []byte) { h[2] = 2 }), want: envelope.ErrVersion},
		{name: "version/255", frames: patchHeader(validData(), func(h []byte) { h[2] = 255 }), want: envelope.ErrVersion},

		// ErrKind
		{name: "kind/0", frames: patchHeader(validData(), func(h []byte) { h[3] = 0 }), want: envelope.ErrKind},
		{name: "kind/8", frames: patchHeader(validData(), func(h []byte) { h[3] = 8 }), want: envelope.ErrKind},
		{name: "kind/255", frames: patchHeader(validData(), func(h []byte) { h[3] = 255 }), want: envelope.ErrKind},

		// ErrFlags
		{name: "flags/data-unknown-bit", frames: patchHeader(validData(), setU16(4, 1<<2)), want: envelope.ErrFlags},
		{name: "flags/data-high-bit", frames: patchHeader(validData(), setU16(4, 0x8000)), want: envelope.ErrFlags},
		{name: "flags/data-known-plus-unknown", frames: patchHeader(validBatch(), setU16(4, uint16(envelope.FlagBatch|envelope.FlagReplay)|0x10)), want: envelope.ErrFlags},
		{name: "flags/hello-batch", frames: patchHeader(validHello(), setU16(4, uint16(envelope.FlagBatch))), want: envelope.ErrFlags},
		{name: "flags/heartbeat-replay", frames: patchHeader(validTable(envelope.KindHeartbeat), setU16(4, uint16(envelope.FlagReplay))), want: envelope.ErrFlags},
		{name: "flags/end-unknown", frames: patchHeader(validTable(envelope.KindEnd), setU16(4, 0x0100)), want: envelope.ErrFlags},

		// ErrTopic
		{name: "topic/data-empty", frames: handMade("", dataHeader(1), []byte("x")), want: envelope.ErrTopic},
		{name: "topic/data-too-long", frames: handMade(longTopic, dataHeader(1), []byte("x")), want: envelope.ErrTopic},
		{name: "topic/data-over-custom-limit", frames: handMade("abcd", dataHeader(1), []byte("x")), lim: envelope.Limits{MaxTopic: 3}, want: envelope.ErrTopic},
		{name: "topic/data-leading-zero", frames: handMade("\x00orders", dataHeader(1), []byte("x")), want: envelope.ErrTopic},
		{name: "topic/data-on-control-topic", frames: handMade(envelope.ControlTopic, dataHeader(1), []byte("x")), want: envelope.ErrTopic},
		{name: "topic/hello-on-data-topic", frames: handMade("orders", controlHeader(envelope.KindHello), make([]byte, envelope.NonceSize)), want: envelope.ErrTopic},
		{name: "topic/heartbeat-empty", frames: handMade("", controlHeader(envelope.KindHeartbeat), envelope.AppendTable(nil, nil)), want: envelope.ErrTopic},
		{name: "topic/end-control-prefix", frames: handMade(envelope.ControlTopic+"x", controlHeader(envelope.KindEnd), envelope.AppendTable(nil, nil)), want: envelope.ErrTopic},

		// ErrPayloadSize
		{name: "payload/over-custom-limit", frames: handMade("t", dataHeader(1), make([]byte, 9)), lim: envelope.Limits{MaxPayload: 8}, want: envelope.ErrPayloadSize},
		{name: "payload/over-default-limit", frames: handMade("t", dataHeader(1), make([]byte, envelope.DefaultLimits.MaxPayload+1)), want: envelope.ErrPayloadSize},
		{name: "payload/len-larger-than-frame", frames: patchHeader(validData(), setU32(48, 6)), want: envelope.ErrPayloadSize},
		{name: "payload/len-smaller-than-frame", frames: patchHeader(validData(), setU32(48, 4)), want: envelope.ErrPayloadSize},
		{name: "payload/len-max-uint32", frames: patchHeader(validData(), setU32(48, math.MaxUint32)), want: envelope.ErrPayloadSize},
		{name: "payload/batch-len-mismatch", frames: patchHeader(validBatch(), setU32(48, 0)), want: envelope.ErrPayloadSize},
		{name: "payload/hello-nonce-short", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindHello), make([]byte, envelope.NonceSize-1)), want: envelope.ErrPayloadSize},
		{name: "payload/hello-nonce-long", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindHello), make([]byte, envelope.NonceSize+1)), want: envelope.ErrPayloadSize},

		// ErrChecksum
		{name: "checksum/payload-bit-flip", frames: func() [][]byte { f := validData(); f[2] = slices.Clone(f[2]); f[2][0] ^= 1; return f }(), want: envelope.ErrChecksum},
		{name: "checksum/header-crc-wrong", frames: patchHeader(validData(), func(h []byte) { h[55] ^= 0x80 }), want: envelope.ErrChecksum},
		{name: "checksum/empty-payload", frames: patchHeader(encoded("t", dataHeader(1), nil), setU32(52, 1)), want: envelope.ErrChecksum},
		{name: "checksum/batch", frames: func() [][]byte { f := validBatch(); f[2] = slices.Clone(f[2]); f[2][len(f[2])-1]++; return f }(), want: envelope.ErrChecksum},

		// ErrRecords
		{name: "records/truncated-record", frames: func() [][]byte {
			h := dataHeader(1)
			h.Flags, h.Count = envelope.FlagBatch, 2
			p := recs("a", "bcd")
			return handMade("t", h, p[:len(p)-1])
		}(), want: envelope.ErrRecords},
		{name: "records/truncated-length-prefix", frames: func() [][]byte {
			h := dataHeader(1)
			h.Flags, h.Count = envelope.FlagBatch, 2
			return handMade("t", h, append(recs("a"), 0, 0, 0))
		}(), want: envelope.ErrRecords},
		{name: "records/length-prefix-huge", frames: func() [][]byte {
			h := dataHeader(1)
			h.Flags, h.Count = envelope.FlagBatch, 2
			return handMade("t", h, append(recs("a"), 0xff, 0xff, 0xff, 0xff, 'x'))
		}(), want: envelope.ErrRecords},
		{name: "records/fewer-than-count", frames: func() [][]byte {
			h := dataHeader(1)
			h.Flags, h.Count = envelope.FlagBatch, 3
			return handMade("t", h, recs("a", "b"))
		}(), want: envelope.ErrRecords},
		{name: "records/empty-payload-batch", frames: func() [][]byte {
			h := dataHeader(1)
			h.Flags, h.Count = envelope.FlagBatch, 2
			return handMade("t", h, nil)
		}(), want: envelope.ErrRecords},
		{name: "records/trailing-bytes", frames: func() [][]byte {
			h := dataHeader(1)
			h.Flags, h.Count = envelope.FlagBatch, 2
			return handMade("t", h, append(recs("a", "b"), 0))
		}(), want: envelope.ErrRecords},
		{name: "records/more-than-count", frames: func() [][]byte {
			h := dataHeader(1)
			h.Flags, h.Count = envelope.FlagBatch, 2
			return handMade("t", h, recs("a", "b", "c"))
		}(), want: envelope.ErrRecords},
		{name: "records/count>1-without-batch-flag", frames: func() [][]byte {
			h := dataHeader(1)
			h.Count = 2
			return handMade("t", h, recs("a", "b"))
		}(), want: envelope.ErrRecords},
		{name: "records/count>1-replay-without-batch-flag", frames: func() [][]byte {
			h := dataHeader(1)
			h.Flags, h.Count = envelope.FlagReplay, 2
			return handMade("t", h, recs("a", "b"))
		}(), want: envelope.ErrRecords},
		{name: "records/count-1-with-batch-flag", frames: func() [][]byte {
			// Single records travel raw, so clients that ignore batches
			// never see a length prefix as payload.
			h := dataHeader(1)
			h.Flags = envelope.FlagBatch
			return handMade("t", h, recs("solo"))
		}(), want: envelope.ErrRecords},
		{name: "records/hello-count-1", frames: patchHeader(validHello(), setU16(6, 1)), want: envelope.ErrRecords},
		{name: "records/heartbeat-count-1", frames: patchHeader(validTable(envelope.KindHeartbeat), setU16(6, 1)), want: envelope.ErrRecords},
		{name: "records/end-count-max", frames: patchHeader(validTable(envelope.KindEnd), setU16(6, 0xffff)), want: envelope.ErrRecords},
		{name: "records/count-0", frames: patchHeader(validData(), setU16(6, 0)), want: envelope.ErrRecords},
		{name: "records/count-0-batch", frames: patchHeader(validBatch(), setU16(6, 0)), want: envelope.ErrRecords},

		// ErrSequence
		{name: "sequence/single-seq-0", frames: encoded("t", dataHeader(0), []byte("x")), want: envelope.ErrSequence},
		{name: "sequence/batch-seq-0", frames: patchHeader(validBatch(), func(h []byte) { clear(h[32:40]) }), want: envelope.ErrSequence},
		{name: "sequence/overflow-by-one", frames: func() [][]byte {
			h := dataHeader(math.MaxUint64)
			h.Flags, h.Count = envelope.FlagBatch, 2
			return handMade("t", h, recs("a", "b"))
		}(), want: envelope.ErrSequence},
		{name: "sequence/overflow-max-count", frames: func() [][]byte {
			h := dataHeader(math.MaxUint64 - envelope.MaxRecords + 2)
			h.Flags, h.Count = envelope.FlagBatch, envelope.MaxRecords
			return handMade("t", h, make([]byte, 4*envelope.MaxRecords))
		}(), want: envelope.ErrSequence},

		{name: "sequence/hello-seq-nonzero", frames: patchHeader(validHello(), func(h []byte) { h[39] = 1 }), want: envelope.ErrSequence},
		{name: "sequence/heartbeat-seq-nonzero", frames: patchHeader(validTable(envelope.KindHeartbeat), func(h []byte) { h[32] = 0x80 }), want: envelope.ErrSequence},
		{name: "sequence/end-seq-nonzero", frames: patchHeader(validTable(envelope.KindEnd), func(h []byte) { h[35] = 7 }), want: envelope.ErrSequence},

		// ErrTable
		{name: "table/heartbeat-empty-payload", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindHeartbeat), nil), want: envelope.ErrTable},
		{name: "table/heartbeat-one-byte", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindHeartbeat), []byte{0}), want: envelope.ErrTable},
		{name: "table/heartbeat-missing-entry", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindHeartbeat), []byte{0, 1}), want: envelope.ErrTable},
		{name: "table/heartbeat-truncated-seq", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindHeartbeat),
			envelope.AppendTable(nil, []envelope.TopicSeq{{Topic: "a", Seq: 1}})[:11]), want: envelope.ErrTable},
		{name: "table/end-empty-topic", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindEnd),
			[]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1}), want: envelope.ErrTable},
		{name: "table/end-reserved-topic", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindEnd),
			envelope.AppendTable(nil, []envelope.TopicSeq{{Topic: envelope.ControlTopic, Seq: 1}})), want: envelope.ErrTable},
		{name: "table/end-trailing-bytes", frames: encoded(envelope.ControlTopic, controlHeader(envelope.KindEnd),
			append(envelope.AppendTable(nil, []envelope.TopicSeq{{Topic: "a", Seq: 1}}), 0)), want: envelope.ErrTable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := cloneFrames(tc.frames)
			m, err := envelope.Decode(tc.frames, tc.lim)
			checkSentinel(t, err, tc.want)
			if m.Topic != nil || m.Payload != nil || m.Header != (envelope.Header{}) {
				t.Errorf("Decode returned a non-zero Message with error %v: %+v", err, m)
			}
			if !framesEqual(tc.frames, orig) {
				t.Error("Decode modified its input")
			}
		})
	}
}

func cloneFrames(frames [][]byte) [][]byte {
	if frames == nil {
		return nil
	}
	c := make([][]byte, len(frames))
	for i, f := range frames {
		c[i] = slices.Clone(f)
	}
	return c
}

func framesEqual(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

// TestDecodeErrorOrder pins which sentinel wins when a message has several
// faults, so counters by cause stay stable.
func TestDecodeErrorOrder(t *testing.T) {
	bad := func(f func([]byte)) [][]byte {
		fr := patchHeader(validData(), f)
		fr[0] = nil                                  // bad topic
		fr[2] = append(slices.Clone(fr[2]), "xx"...) // bad length and checksum
		return fr
	}
	tests := []struct {
		name   string
		frames [][]byte
		want   error
	}{
		{"magic-before-version", bad(func(h []byte) { h[0], h[2] = 0, 9 }), envelope.ErrMagic},
		{"version-before-kind", bad(func(h []byte) { h[2], h[3] = 9, 9 }), envelope.ErrVersion},
		{"flags-before-records", bad(func(h []byte) { h[5] = 0x80; h[7] = 0 }), envelope.ErrFlags},
		{"records-before-sequence", bad(func(h []byte) { h[7] = 0; clear(h[32:40]) }), envelope.ErrRecords},
		{"header-before-topic", bad(func(h []byte) { clear(h[32:40]) }), envelope.ErrSequence},
		{"topic-before-payload", bad(func([]byte) {}), envelope.ErrTopic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := envelope.Decode(tc.frames, envelope.Limits{})
			checkSentinel(t, err, tc.want)
		})
	}
}

func TestDecodeBoundaries(t *testing.T) {
	t.Run("max-seq-single", func(t *testing.T) {
		m := mustDecode(t, encoded("t", dataHeader(math.MaxUint64), []byte("x")))
		if m.LastSeq() != math.MaxUint64 {
			t.Errorf("LastSeq = %d", m.LastSeq())
		}
	})
	t.Run("max-seq-batch", func(t *testing.T) {
		h := dataHeader(math.MaxUint64 - 2)
		h.Flags, h.Count = envelope.FlagBatch, 3
		m := mustDecode(t, handMade("t", h, recs("a", "b", "c")))
		var seqs []uint64
		for seq := range m.Records() {
			seqs = append(seqs, seq)
		}
		if want := []uint64{math.MaxUint64 - 2, math.MaxUint64 - 1, math.MaxUint64}; !slices.Equal(seqs, want) {
			t.Errorf("seqs = %v, want %v", seqs, want)
		}
	})
	t.Run("topic-at-default-limit", func(t *testing.T) {
		mustDecode(t, encoded(strings.Repeat("t", envelope.DefaultLimits.MaxTopic), dataHeader(1), nil))
	})
	t.Run("topic-at-custom-limit", func(t *testing.T) {
		fr := encoded("abc", dataHeader(1), nil)
		if _, err := envelope.Decode(fr, envelope.Limits{MaxTopic: 3}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("topic-with-inner-zero", func(t *testing.T) {
		mustDecode(t, encoded("a\x00b", dataHeader(1), nil))
	})
	t.Run("payload-at-custom-limit", func(t *testing.T) {
		fr := encoded("t", dataHeader(1), make([]byte, 8))
		if _, err := envelope.Decode(fr, envelope.Limits{MaxPayload: 8}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("negative-limits-mean-default", func(t *testing.T) {
		fr := encoded(strings.Repeat("t", 200), dataHeader(1), make([]byte, 1000))
		if _, err := envelope.Decode(fr, envelope.Limits{MaxTopic: -1, MaxPayload: -1}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("max-records", func(t *testing.T) {
		var b envelope.Builder
		b.Begin(nil, "t", dataHeader(1))
		for range envelope.MaxRecords {
			b.Add(nil)
		}
		fr, _ := b.Finish()
		m := mustDecode(t, fr[:])
		if m.Count != envelope.MaxRecords || m.LastSeq() != envelope.MaxRecords {
			t.Errorf("Count = %d LastSeq = %d", m.Count, m.LastSeq())
		}
		n := 0
		for range m.Records() {
			n++
		}
		if n != envelope.MaxRecords {
			t.Errorf("iterated %d records, want %d", n, envelope.MaxRecords)
		}
	})
}

func mustDecode(t testing.TB, frames [][]byte) envelope.Message {
	t.Helper()
	m, err := envelope.Decode(frames, envelope.Limits{})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return m
}

type record struct {
	seq     uint64
	payload []byte
}

func collect(m *envelope.Message) []record {
	var rs []record
	for seq, p := range m.Records() {
		rs = append(rs, record{seq, p})
	}
	return rs
}

// checkData checks that m is the DATA message with topic, header fields
// from h, and payloads with consecutive sequences from h.Seq.
func checkData(t testing.TB, m envelope.Message, topic string, h envelope.Header, payloads [][]byte) {
	t.Helper()
	if string(m.Topic) != topic {
		t.Errorf("Topic = %q, want %q", m.Topic, topic)
	}
	if m.Kind != envelope.KindData || m.Publisher != h.Publisher || m.Epoch != h.Epoch || m.Seq != h.Seq || m.Time != h.Time {
		t.Errorf("header = %+v, want fields of %+v", m.Header, h)
	}
	if int(m.Count) != len(payloads) {
		t.Errorf("Count = %d, want %d", m.Count, len(payloads))
	}
	wantFlags := h.Flags &^ envelope.FlagBatch
	if len(payloads) > 1 {
		wantFlags |= envelope.FlagBatch
	}
	if m.Flags != wantFlags {
		t.Errorf("Flags = %#x, want %#x", m.Flags, wantFlags)
	}
	if m.Len != uint32(len(m.Payload)) || m.CRC != envelope.Checksum(m.Payload) {
		t.Errorf("Len/CRC = %d/%#x, payload has %d/%#x", m.Len, m.CRC, len(m.Payload), envelope.Checksum(m.Payload))
	}
	if len(payloads) == 1 && !bytes.Equal(m.Payload, payloads[0]) {
		t.Errorf("single record payload is not raw: %q, want %q", m.Payload, payloads[0])
	}
	if want := h.Seq + uint64(len(payloads)) - 1; m.LastSeq() != want {
		t.Errorf("LastSeq = %d, want %d", m.LastSeq(), want)
	}
	got := collect(&m)
	if len(got) != len(payloads) {
		t.Fatalf("Records yielded %d records, want %d", len(got), len(payloads))
	}
	for i, r := range got {
		if r.seq != h.Seq+uint64(i) {
			t.Errorf("record %d: seq %d, want %d", i, r.seq, h.Seq+uint64(i))
		}
		if !bytes.Equal(r.payload, payloads[i]) {
			t.Errorf("record %d: payload %q, want %q", i, r.payload, payloads[i])
		}
		if len(payloads) > 1 && cap(r.payload) != len(r.payload) {
			t.Errorf("record %d: cap %d > len %d lets appends clobber the next record", i, cap(r.payload), len(r.payload))
		}
	}
}

func TestRoundTripSingle(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		flags   envelope.Flags
		payload []byte
	}{
		{"small", "orders.eu", 0, []byte("hello")},
		{"empty", "orders.eu", 0, nil},
		{"empty-non-nil", "o", 0, []byte{}},
		{"binary", "bin\xff\x01", 0, []byte{0, 0, 0, 5, 0xff, 0}},
		{"replay", "orders.eu", envelope.FlagReplay, []byte("again")},
		{"batch-flag-ignored", "orders.eu", envelope.FlagBatch, []byte("solo")},
		{"64KiB", "big", 0, bytes.Repeat([]byte("0123456789abcdef"), 4096)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := dataHeader(77)
			h.Flags = tc.flags
			h.Count, h.Len, h.CRC = 9, 9, 9 // ignored by Encode
			want := h
			want.Flags &^= envelope.FlagBatch

			fr, buf := envelope.Encode(nil, tc.topic, h, tc.payload)
			if len(fr[1]) != envelope.HeaderSize {
				t.Fatalf("header frame is %d bytes", len(fr[1]))
			}
			if !bytes.Equal(fr[2], tc.payload) {
				t.Fatalf("payload frame %q is not the raw payload %q", fr[2], tc.payload)
			}
			if !bytes.HasPrefix(buf, fr[0]) {
				t.Error("returned buffer does not start with the topic")
			}
			m := mustDecode(t, fr[:])
			checkData(t, m, tc.topic, want, [][]byte{tc.payload})
			if m.Flags&envelope.FlagBatch != 0 {
				t.Error("single record carries FlagBatch")
			}

			// Builder with one record must produce the same bytes as Encode.
			var b envelope.Builder
			b.Begin(nil, tc.topic, h)
			b.Add(tc.payload)
			bfr, _ := b.Finish()
			if !framesEqual(bfr[:], fr[:]) {
				t.Error("Builder with one record differs from Encode")
			}
		})
	}
}

func TestRoundTripBatch(t *testing.T) {
	for _, n := range []int{2, 3, 7, 64, 255, 256, 257, 1000} {
		t.Run(fmt.Sprintf("records=%d", n), func(t *testing.T) {
			payloads := make([][]byte, n)
			for i := range payloads {
				switch {
				case i%5 == 0:
					payloads[i] = nil // empty records anywhere, including first
				case i%5 == 1:
					payloads[i] = []byte{}
				default:
					payloads[i] = bytes.Repeat([]byte{byte(i)}, i%300)
				}
			}
			payloads[n-1] = nil // and last
			total := 0
			for _, p := range payloads {
				total += 4 + len(p)
			}
			h := dataHeader(1_000_000)
			h.Flags = envelope.FlagReplay
			const topic = "sensors/temp"
			var b envelope.Builder
			b.Begin(nil, topic, h)
			for i, p := range payloads {
				if b.Count() != i {
					t.Fatalf("Count = %d before record %d", b.Count(), i)
				}
				b.Add(p)
			}
			if want := len(topic) + envelope.HeaderSize + total; b.Size() != want {
				t.Errorf("Size = %d, want %d", b.Size(), want)
			}
			fr, buf := b.Finish()
			if len(buf) != b.Size() {
				t.Errorf("buffer is %d bytes, Size says %d", len(buf), b.Size())
			}
			if len(fr[2]) != total {
				t.Errorf("payload is %d bytes, want %d", len(fr[2]), total)
			}
			m := mustDecode(t, fr[:])
			checkData(t, m, topic, h, payloads)
		})
	}
}

func TestRecordsStopsEarly(t *testing.T) {
	var b envelope.Builder
	b.Begin(nil, "t", dataHeader(5))
	for _, p := range []string{"a", "b", "c", "d"} {
		b.Add([]byte(p))
	}
	fr, _ := b.Finish()
	m := mustDecode(t, fr[:])
	var got []string
	for seq, p := range m.Records() {
		got = append(got, fmt.Sprint(seq, string(p)))
		if seq == 6 {
			break
		}
	}
	if want := []string{"5a", "6b"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	single := mustDecode(t, encoded("t", dataHeader(9), []byte("x")))
	for range single.Records() {
		break
	}
}

func TestDecodeZeroCopy(t *testing.T) {
	fr := validBatch() // records "a" and "bc"
	m := mustDecode(t, fr)
	if &m.Topic[0] != &fr[0][0] || &m.Payload[0] != &fr[2][0] {
		t.Error("Decode copied the topic or payload")
	}
	starts := []*byte{&fr[2][4], &fr[2][9]}
	i := 0
	for _, p := range m.Records() {
		if &p[0] != starts[i] {
			t.Errorf("record %d does not alias the payload frame", i)
		}
		i++
	}
}

func TestControlMessages(t *testing.T) {
	t.Run("hello", func(t *testing.T) {
		nonce := make([]byte, envelope.NonceSize)
		for i := range nonce {
			nonce[i] = byte(0xf0 + i)
		}
		h := controlHeader(envelope.KindHello)
		fr, _ := envelope.Encode(nil, envelope.ControlTopic, h, nonce)
		m := mustDecode(t, fr[:])
		if string(m.Topic) != envelope.ControlTopic || m.Kind != envelope.KindHello {
			t.Fatalf("got %q %v", m.Topic, m.Kind)
		}
		if !bytes.Equal(m.Payload, nonce) {
			t.Errorf("nonce = %x, want %x", m.Payload, nonce)
		}
		if m.Flags != 0 || m.Count != 0 || m.Publisher != testPub || m.Epoch != h.Epoch || m.Time != h.Time {
			t.Errorf("header = %+v", m.Header)
		}
	})
	tables := map[string][]envelope.TopicSeq{
		"empty": {},
		"one":   {{Topic: "orders.eu", Seq: 1}},
		"many": {
			{Topic: "a", Seq: 1},
			{Topic: "b/c", Seq: 99},
			{Topic: "max", Seq: math.MaxUint64},
			{Topic: strings.Repeat("z", 255), Seq: 1 << 40},
			{Topic: "inner\x00zero", Seq: 0},
		},
	}
	for _, k := range []envelope.Kind{envelope.KindHeartbeat, envelope.KindEnd} {
		for name, tab := range tables {
			t.Run(fmt.Sprintf("%v/%s", k, name), func(t *testing.T) {
				h := controlHeader(k)
				payload := envelope.AppendTable(nil, tab)
				fr, _ := envelope.Encode(nil, envelope.ControlTopic, h, payload)
				m := mustDecode(t, fr[:])
				if m.Kind != k || m.Seq != h.Seq || m.Count != 0 || m.Flags != 0 {
					t.Errorf("header = %+v", m.Header)
				}
				got, err := envelope.ParseTable(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tab) {
					t.Errorf("table = %v, want %v", got, tab)
				}
				if re := envelope.AppendTable(nil, got); !bytes.Equal(re, payload) {
					t.Error("re-encoded table differs")
				}
			})
		}
	}
}

func TestAppendTableAppends(t *testing.T) {
	prefix := []byte("keep")
	b := envelope.AppendTable(slices.Clone(prefix), []envelope.TopicSeq{{Topic: "ab", Seq: 0x0102030405060708}})
	want := append(slices.Clone(prefix), 0, 1, 2, 'a', 'b', 1, 2, 3, 4, 5, 6, 7, 8)
	if !bytes.Equal(b, want) {
		t.Errorf("got % x, want % x", b, want)
	}
}

func TestParseTableErrors(t *testing.T) {
	entry := envelope.AppendTable(nil, []envelope.TopicSeq{{Topic: "abc", Seq: 7}})[2:]
	tests := []struct {
		name string
		p    []byte
	}{
		{"nil", nil},
		{"one-byte", []byte{0}},
		{"count-without-entries", []byte{0, 1}},
		{"count-exceeds-entries", append([]byte{0, 2}, entry...)},
		{"zero-topic-length", []byte{0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"topic-truncated", []byte{0, 1, 5, 'a', 'b'}},
		{"seq-truncated", append([]byte{0, 1}, entry[:len(entry)-1]...)},
		{"reserved-topic", []byte{0, 1, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"trailing-bytes", append(append([]byte{0, 1}, entry...), 0)},
		{"trailing-after-empty", []byte{0, 0, 0}},
		{"max-count-no-entries", []byte{0xff, 0xff}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := envelope.ParseTable(tc.p)
			checkSentinel(t, err, envelope.ErrTable)
			if tab != nil {
				t.Errorf("table = %v, want nil on error", tab)
			}
		})
	}
}

// TestRoundTripRandom is a property test: for random topics, header fields
// and record counts and sizes, Builder -> Decode -> Records gives back what
// went in, and any single corrupted payload byte is caught by the checksum.
func TestRoundTripRandom(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 0xdecafbad, 1 << 63} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			var buf []byte // reused across iterations on purpose
			var b envelope.Builder
			for iter := range 300 {
				topic := randTopic(rng)
				n := 1 + rng.IntN(20)
				if rng.IntN(10) == 0 {
					n = 1 + rng.IntN(1000)
				}
				payloads := make([][]byte, n)
				for i := range payloads {
					size := rng.IntN(64)
					switch rng.IntN(10) {
					case 0:
						size = 0
					case 1:
						size = rng.IntN(4096)
					}
					payloads[i] = randBytes(rng, size)
				}
				var pub envelope.ID
				for i := range pub {
					pub[i] = byte(rng.Uint32())
				}
				h := envelope.Header{
					Kind:      envelope.KindData,
					Publisher: pub,
					Epoch:     rng.Uint64(),
					Seq:       1 + rng.Uint64N(math.MaxUint64-uint64(n)+1),
					Time:      int64(rng.Uint64()),
				}
				if rng.IntN(2) == 0 {
					h.Flags = envelope.FlagReplay
				}
				if rng.IntN(4) == 0 {
					h.Seq = 1 // common case: start of a stream
				}

				var fr envelope.Frames
				if n == 1 && rng.IntN(2) == 0 {
					fr, buf = envelope.Encode(buf, topic, h, payloads[0])
				} else {
					b.Begin(buf, topic, h)
					for _, p := range payloads {
						b.Add(p)
					}
					fr, buf = b.Finish()
				}
				m, err := envelope.Decode(fr[:], envelope.Limits{})
				if err != nil {
					t.Fatalf("iter %d: Decode: %v", iter, err)
				}
				checkData(t, m, topic, h, payloads)
				if t.Failed() {
					t.Fatalf("iter %d: topic %q, %d records", iter, topic, n)
				}

				if len(fr[2]) > 0 {
					corrupt := cloneFrames(fr[:])
					corrupt[2][rng.IntN(len(corrupt[2]))] ^= byte(1 + rng.IntN(255))
					_, err := envelope.Decode(corrupt, envelope.Limits{})
					checkSentinel(t, err, envelope.ErrChecksum)
				}
			}
		})
	}
}

func randTopic(rng *rand.Rand) string {
	n := 1 + rng.IntN(envelope.DefaultLimits.MaxTopic)
	if rng.IntN(2) == 0 {
		n = 1 + rng.IntN(16)
	}
	b := randBytes(rng, n)
	if b[0] == 0 {
		b[0] = 1
	}
	return string(b)
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestBuilderReuse(t *testing.T) {
	build := func(b *envelope.Builder, buf []byte, topic string, seq uint64, ps ...string) (envelope.Frames, []byte) {
		b.Begin(buf, topic, dataHeader(seq))
		for _, p := range ps {
			b.Add([]byte(p))
		}
		return b.Finish()
	}
	var b envelope.Builder
	buf := make([]byte, 0, 1024)

	fr1, buf := build(&b, buf, "first", 1, "a", "bb", "ccc")
	first := cloneFrames(fr1[:])
	firstBuf := slices.Clone(buf)

	// A different, longer message in the same buffer...
	_, buf = build(&b, buf, "second.topic.is.longer", 4, "dddddddddddddddddddd", "", "e", "ffff")
	// ...a single-record one...
	_, buf = build(&b, buf, "s", 9, "solo")
	// ...and the first again: identical bytes.
	fr2, buf2 := build(&b, buf, "first", 1, "a", "bb", "ccc")
	if !framesEqual(fr2[:], first) {
		t.Errorf("rebuilt frames differ:\n got %q\nwant %q", fr2[:], first)
	}
	if !bytes.Equal(buf2, firstBuf) {
		t.Errorf("rebuilt buffer differs:\n got %q\nwant %q", buf2, firstBuf)
	}
	if &buf2[:1][0] != &buf[:1][0] {
		t.Error("Builder reallocated although the buffer was large enough")
	}

	// Encode into a reused buffer, too.
	h := dataHeader(3)
	e1, ebuf := envelope.Encode(buf2, "enc", h, []byte("payload"))
	want := cloneFrames(e1[:])
	for range 3 {
		var e envelope.Frames
		e, ebuf = envelope.Encode(ebuf, "enc", h, []byte("payload"))
		if !framesEqual(e[:], want) {
			t.Fatal("Encode into a reused buffer gave different bytes")
		}
	}

	// Frames must not let appends to one frame clobber the next.
	fr3, _ := build(&b, nil, "topic", 1, "x", "y")
	hdr := slices.Clone(fr3[1])
	_ = append(fr3[0], "garbage"...)
	_ = append(fr3[1], "garbage"...)
	if !bytes.Equal(fr3[1], hdr) || string(fr3[0]) != "topic" {
		t.Error("appending to a frame overwrote the next one")
	}
}

func TestEncodeAllocs(t *testing.T) {
	payload := make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	h := dataHeader(1)
	allocs := testing.AllocsPerRun(100, func() {
		_, buf = envelope.Encode(buf, "allocs", h, payload)
	})
	if allocs != 0 {
		t.Errorf("Encode into a reused buffer: %v allocs/op, want 0", allocs)
	}
	var b envelope.Builder
	allocs = testing.AllocsPerRun(100, func() {
		b.Begin(buf, "allocs", h)
		for range 16 {
			b.Add(payload[:100])
		}
		_, buf = b.Finish()
	})
	if allocs != 0 {
		t.Errorf("Builder into a reused buffer: %v allocs/op, want 0", allocs)
	}
}

func TestDecodeAllocs(t *testing.T) {
	var b envelope.Builder
	b.Begin(nil, "allocs", dataHeader(1))
	for range 16 {
		b.Add([]byte("record"))
	}
	fr, _ := b.Finish()
	frames := fr[:]
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		m, err := envelope.Decode(frames, envelope.Limits{})
		if err != nil {
			panic(err)
		}
		for _, p := range m.Records() {
			n += len(p)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode+Records: %v allocs/op, want 0", allocs)
	}
}

func TestID(t *testing.T) {
	t.Run("round-trip", func(t *testing.T) {
		for range 10 {
			id := envelope.NewID()
			s := id.String()
			if len(s) != 32 || strings.ToLower(s) != s {
				t.Fatalf("String() = %q, want 32 lowercase hex digits", s)
			}
			if id.Short() != s[:8] {
				t.Errorf("Short() = %q, want %q", id.Short(), s[:8])
			}
			got, err := envelope.ParseID(s)
			if err != nil || got != id {
				t.Fatalf("ParseID(%q) = %v, %v; want %v", s, got, err, id)
			}
		}
	})
	t.Run("fixed", func(t *testing.T) {
		const s = "5e9a1100deadbeef0102030405060708"
		if testPub.String() != s {
			t.Errorf("String() = %q, want %q", testPub.String(), s)
		}
		if id, err := envelope.ParseID(s); err != nil || id != testPub {
			t.Errorf("ParseID = %v, %v", id, err)
		}
		if id, err := envelope.ParseID(strings.ToUpper(s)); err != nil || id != testPub {
			t.Errorf("ParseID(upper) = %v, %v", id, err)
		}
		if (envelope.ID{}).String() != strings.Repeat("0", 32) {
			t.Error("zero ID does not print as zeros")
		}
	})
	t.Run("random-not-zero-not-repeated", func(t *testing.T) {
		a, b := envelope.NewID(), envelope.NewID()
		if a == (envelope.ID{}) || a == b {
			t.Errorf("NewID gave %v and %v", a, b)
		}
	})
	for _, bad := range []string{
		"",
		"5e9a1100deadbeef010203040506070",   // 31 digits
		"5e9a1100deadbeef01020304050607080", // 33 digits
		"5e9a1100deadbeef0102030405060708 ", // trailing space
		"5e9a1100deadbeef01020304050607zz",  // not hex
		"5e9a1100-dead-beef-0102-03040506",  // uuid style
		"0x9a1100deadbeef0102030405060708",  // prefix
		"5e9a1100deadbeef010203040506070\u00e9",
	} {
		t.Run(fmt.Sprintf("bad/%q", bad), func(t *testing.T) {
			id, err := envelope.ParseID(bad)
			if err == nil {
				t.Fatalf("ParseID(%q) = %v, want error", bad, id)
			}
			if !strings.Contains(err.Error(), "publisher id") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[envelope.Kind]string{
		envelope.KindData:      "DATA",
		envelope.KindHello:     "HELLO",
		envelope.KindHeartbeat: "HEARTBEAT",
		envelope.KindEnd:       "END",
		envelope.KindAbort:     "ABORT",
		envelope.KindMulti:     "MULTI",
		0:                      "Kind(0)",
		200:                    "Kind(200)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// TestHeaderLayout pins the byte layout documented on Header.
func TestHeaderLayout(t *testing.T) {
	h := envelope.Header{
		Kind:      envelope.KindData,
		Flags:     envelope.FlagBatch | envelope.FlagReplay,
		Count:     0x0203,
		Publisher: envelope.ID{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f},
		Epoch:     0x2021222324252627,
		Seq:       0x3031323334353637,
		Time:      -2,
		Len:       0x50515253,
		CRC:       0x54555657,
	}
	got := envelope.AppendHeader([]byte("pre"), &h)
	want := []byte("pre")
	want = append(want, 'S', 'Q', 1, 1, 0, 3, 2, 3)
	want = append(want, h.Publisher[:]...)
	want = append(want, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27)
	want = append(want, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37)
	want = append(want, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe)
	want = append(want, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendHeader:\n got % x\nwant % x", got, want)
	}
	if len(got)-3 != envelope.HeaderSize {
		t.Fatalf("header is %d bytes, want %d", len(got)-3, envelope.HeaderSize)
	}
	back, err := envelope.ParseHeader(got[3:])
	if err != nil {
		t.Fatal(err)
	}
	if back != h {
		t.Errorf("ParseHeader = %+v, want %+v", back, h)
	}
}

func TestChecksumIsCRC32C(t *testing.T) {
	// Standard CRC-32C check value.
	if got := envelope.Checksum([]byte("123456789")); got != 0xe3069283 {
		t.Errorf("Checksum = %#08x, want 0xe3069283", got)
	}
	if got := envelope.Checksum(nil); got != 0 {
		t.Errorf("Checksum(nil) = %#x, want 0", got)
	}
}

func TestCheckTopic(t *testing.T) {
	tests := []struct {
		topic string
		kind  envelope.Kind
		lim   envelope.Limits
		ok    bool
	}{
		{"a", envelope.KindData, envelope.Limits{}, true},
		{"", envelope.KindData, envelope.Limits{}, false},
		{"\x00a", envelope.KindData, envelope.Limits{}, false},
		{"ab", envelope.KindData, envelope.Limits{MaxTopic: 1}, false},
		{envelope.ControlTopic, envelope.KindHello, envelope.Limits{MaxTopic: 1}, true},
		{envelope.ControlTopic, envelope.KindHeartbeat, envelope.Limits{}, true},
		{envelope.ControlTopic, envelope.KindEnd, envelope.Limits{}, true},
		{"a", envelope.KindEnd, envelope.Limits{}, false},
		{envelope.ControlTopic[:len(envelope.ControlTopic)-1], envelope.KindHello, envelope.Limits{}, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v/%q", tc.kind, tc.topic), func(t *testing.T) {
			err := envelope.CheckTopic([]byte(tc.topic), tc.kind, tc.lim)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkSentinel(t, err, envelope.ErrTopic)
		})
	}
}

func TestPrefixes(t *testing.T) {
	match := []struct {
		prefixes []string
		topic    string
		want     bool
	}{
		{nil, "a", true},
		{[]string{""}, "a", true},
		{[]string{"prices."}, "prices.eur", true},
		{[]string{"prices.eur"}, "prices.", false},
		{[]string{"x", "pri"}, "prices", true},
	}
	for _, tc := range match {
		if got := envelope.MatchesAny(tc.prefixes, tc.topic); got != tc.want {
			t.Errorf("MatchesAny(%q, %q) = %v", tc.prefixes, tc.topic, got)
		}
	}
	overlap := []struct {
		a, b []string
		want bool
	}{
		{nil, []string{"x"}, true},
		{[]string{"prices."}, []string{"prices.eur"}, true},
		{[]string{"prices.eur"}, []string{"prices."}, true},
		{[]string{"prices."}, []string{"orders."}, false},
	}
	for _, tc := range overlap {
		if got := envelope.PrefixesOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("PrefixesOverlap(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// DecodeInProcess skips only the checksum: a flipped payload bit that
// Decode refuses passes, and every other fault is refused as Decode
// refuses it.
func TestDecodeInProcessSkipsOnlyTheChecksum(t *testing.T) {
	flipped := validData()
	flipped[2] = slices.Clone(flipped[2])
	flipped[2][0] ^= 1
	if _, err := envelope.Decode(flipped, envelope.Limits{}); !errors.Is(err, envelope.ErrChecksum) {
		t.Fatalf("Decode: %v, want ErrChecksum", err)
	}
	m, err := envelope.DecodeInProcess(flipped, envelope.Limits{})
	if err != nil {
		t.Fatalf("DecodeInProcess: %v", err)
	}
	if !bytes.Equal(m.Payload, flipped[2]) {
		t.Fatalf("payload %q, want %q", m.Payload, flipped[2])
	}
	badLen := patchHeader(validData(), setU32(48, 6))
	_, werr := envelope.Decode(badLen, envelope.Limits{})
	_, gerr := envelope.DecodeInProcess(badLen, envelope.Limits{})
	if !errors.Is(gerr, envelope.ErrPayloadSize) || gerr.Error() != werr.Error() {
		t.Fatalf("DecodeInProcess: %v, Decode: %v", gerr, werr)
	}
}
