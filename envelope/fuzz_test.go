package envelope_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

// fuzzSeeds returns the messages FuzzDecode starts from: one of each kind,
// and a few that are wrong in one way each. testdata/fuzz/FuzzDecode holds
// the same kinds of input as committed corpus files.
func fuzzSeeds() [][][]byte {
	batch := func(seq uint64, ps ...string) [][]byte {
		var b envelope.Builder
		b.Begin(nil, "orders.eu", dataHeader(seq))
		for _, p := range ps {
			b.Add([]byte(p))
		}
		fr, _ := b.Finish()
		return fr[:]
	}
	replay := dataHeader(7)
	replay.Flags = envelope.FlagReplay
	seeds := [][][]byte{
		validData(),
		encoded("t", dataHeader(1), nil),
		encoded("orders.eu", replay, []byte("again")),
		validBatch(),
		batch(100, "a", "", "ccc", "\x00\x00\x00\x01"),
		validHello(),
		validTable(envelope.KindHeartbeat),
		validTable(envelope.KindEnd),
		encoded(envelope.ControlTopic, controlHeader(envelope.KindEnd), envelope.AppendTable(nil, nil)),
	}
	// Corrupt variants: each breaks one rule Decode checks.
	b := validBatch()
	oneInBatch := dataHeader(5)
	oneInBatch.Flags, oneInBatch.Count = envelope.FlagBatch, 1
	seeds = append(seeds, handMade("t", oneInBatch, recs("solo"))) // single record with FlagBatch
	seeds = append(seeds,
		patchHeader(validData(), func(h []byte) { h[0] = 'X' }),                                // magic
		patchHeader(validData(), func(h []byte) { h[3] = 9 }),                                  // kind
		patchHeader(validData(), setU16(6, 2)),                                                 // Count>1 without FlagBatch
		patchHeader(b, setU16(6, 3)),                                                           // too few records
		patchHeader(b, func(h []byte) { clear(h[32:40]) }),                                     // seq 0
		patchHeader(b, func(h []byte) { h[32] = 0xff; h[33] = 0xff }),                          // near seq overflow
		patchHeader(validData(), setU32(48, 1<<31)),                                            // Len mismatch
		[][]byte{b[0], b[1], append(slices.Clone(b[2]), 0)},                                    // trailing byte
		[][]byte{b[0], b[1][:envelope.HeaderSize-1], b[2]},                                     // short header
		encoded(envelope.ControlTopic, controlHeader(envelope.KindHeartbeat), []byte{0, 1, 1}), // bad table
	)
	return seeds
}

func FuzzDecode(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s[0], s[1], s[2], i*7)
	}
	f.Fuzz(func(t *testing.T, topic, header, payload []byte, split int) {
		frames := [][]byte{topic, header, payload}
		checkDecode(t, frames, envelope.Limits{})

		// The same frames with Len and CRC fixed up to match the payload,
		// so that mutated payloads get past the checksum and exercise
		// the record and table checks behind it.
		if len(header) == envelope.HeaderSize {
			fixed := slices.Clone(header)
			binary.BigEndian.PutUint32(fixed[48:], uint32(len(payload)))
			binary.BigEndian.PutUint32(fixed[52:], envelope.Checksum(payload))
			checkDecode(t, [][]byte{topic, fixed, payload}, envelope.Limits{})
		}

		// The same frames under tight limits chosen by split.
		lim := envelope.Limits{MaxTopic: split & 0x1ff, MaxPayload: (split >> 9) & 0xffff}
		checkDecode(t, frames, lim)

		// The same bytes cut at the wrong places, as a broken transport or
		// a peer that framed the message differently would deliver them.
		all := slices.Concat(topic, header, payload)
		s := int(uint(split) % uint(len(all)+1))
		rest := all[s:]
		hlen := min(envelope.HeaderSize, len(rest))
		checkDecode(t, [][]byte{all[:s], rest[:hlen], rest[hlen:]}, envelope.Limits{})
		for _, wrong := range [][][]byte{
			{all},
			{all[:s], all[s:]},
		} {
			_, err := envelope.Decode(wrong, envelope.Limits{})
			if !errors.Is(err, envelope.ErrFrameCount) {
				t.Fatalf("Decode of %d frames: %v, want ErrFrameCount", len(wrong), err)
			}
		}
		// Four frames are a MULTI's: anything else in them is refused.
		four := [][]byte{topic, header, payload[:min(s, len(payload))], payload[min(s, len(payload)):]}
		if m, err := envelope.Decode(four, envelope.Limits{}); err == nil && m.Kind != envelope.KindMulti {
			t.Fatalf("Decode of 4 frames accepted %v", m.Kind)
		} else if err != nil {
			if got := wrappedSentinels(err); len(got) != 1 {
				t.Fatalf("error %q wraps %d sentinels, want exactly one", err, len(got))
			}
		}
	})
}

// checkDecode decodes frames and checks every promise Decode makes: no
// panic, no change to the input, exactly one sentinel per error, and for a
// message it accepts, records that match the header and a re-encoding by
// Builder that is byte-identical to the input.
func checkDecode(t *testing.T, frames [][]byte, lim envelope.Limits) {
	t.Helper()
	checkDecodeInProcess(t, frames, lim)
	orig := cloneFrames(frames)
	m, err := envelope.Decode(frames, lim)
	if !framesEqual(frames, orig) {
		t.Fatal("Decode modified its input")
	}
	if err != nil {
		if got := wrappedSentinels(err); len(got) != 1 {
			t.Fatalf("error %q wraps %d sentinels, want exactly one", err, len(got))
		}
		return
	}

	l := lim
	if l.MaxTopic <= 0 {
		l.MaxTopic = envelope.DefaultLimits.MaxTopic
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = envelope.DefaultLimits.MaxPayload
	}
	if len(m.Payload) > l.MaxPayload || (m.Kind == envelope.KindData && len(m.Topic) > l.MaxTopic) {
		t.Fatalf("accepted topic of %d bytes and payload of %d bytes with limits %+v", len(m.Topic), len(m.Payload), lim)
	}
	if !bytes.Equal(m.Topic, frames[0]) || !bytes.Equal(m.Payload, frames[2]) {
		t.Fatal("decoded topic or payload differs from the frames")
	}

	if m.Kind != envelope.KindData && (m.Flags != 0 || m.Count != 0 || m.Seq != 0) {
		t.Fatalf("%v accepted with flags %#x, count %d, seq %d; want all 0", m.Kind, m.Flags, m.Count, m.Seq)
	}

	// Rebuild the message from what Decode reported.
	var b envelope.Builder
	b.Begin(nil, string(m.Topic), m.Header)
	switch m.Kind {
	case envelope.KindData:
		n := 0
		next := m.Seq
		for seq, p := range m.Records() {
			if seq != next {
				t.Fatalf("record %d has seq %d, want %d", n, seq, next)
			}
			next++
			n++
			b.Add(p)
		}
		if n != int(m.Count) {
			t.Fatalf("Records yielded %d records, header Count is %d", n, m.Count)
		}
		if n > 1 && m.Flags&envelope.FlagBatch == 0 {
			t.Fatalf("%d records without FlagBatch", n)
		}
	case envelope.KindHello:
		if len(m.Payload) != envelope.NonceSize {
			t.Fatalf("HELLO with %d-byte nonce accepted", len(m.Payload))
		}
		b.AddRaw(m.Payload)
	case envelope.KindHeartbeat, envelope.KindEnd:
		tab, err := envelope.ParseTable(m.Payload)
		if err != nil {
			t.Fatalf("%v accepted with a table ParseTable rejects: %v", m.Kind, err)
		}
		b.AddRaw(envelope.AppendTable(nil, tab))
	default:
		t.Fatalf("accepted kind %v", m.Kind)
	}
	re, _ := b.Finish()
	for i := range re {
		if !bytes.Equal(re[i], frames[i]) {
			t.Fatalf("re-encoded frame %d differs:\n got % x\nwant % x", i, re[i], frames[i])
		}
	}
}

func FuzzParseTable(f *testing.F) {
	f.Add([]byte{0, 0})
	f.Add(envelope.AppendTable(nil, []envelope.TopicSeq{{Topic: "a", Seq: 1}}))
	f.Add(envelope.AppendTable(nil, []envelope.TopicSeq{{Topic: "orders.eu", Seq: 1 << 40}, {Topic: "b", Seq: 0}, {Topic: "x\x00y", Seq: ^uint64(0)}}))
	f.Add([]byte{0, 1, 0})
	f.Add([]byte{0, 1, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0xff, 0xff})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		orig := slices.Clone(p)
		tab, err := envelope.ParseTable(p)
		if !bytes.Equal(p, orig) {
			t.Fatal("ParseTable modified its input")
		}

		// A HEARTBEAT carrying p decodes exactly when ParseTable accepts p.
		fr, _ := envelope.Encode(nil, envelope.ControlTopic, controlHeader(envelope.KindHeartbeat), p)
		_, derr := envelope.Decode(fr[:], envelope.Limits{})

		if err != nil {
			checkSentinel(t, err, envelope.ErrTable)
			if tab != nil {
				t.Fatalf("table %v returned with error", tab)
			}
			if !errors.Is(derr, envelope.ErrTable) && !errors.Is(derr, envelope.ErrPayloadSize) {
				t.Fatalf("ParseTable: %v, but Decode: %v", err, derr)
			}
			return
		}
		if derr != nil && !errors.Is(derr, envelope.ErrPayloadSize) {
			t.Fatalf("ParseTable accepted the table, Decode: %v", derr)
		}
		for i, e := range tab {
			if e.Topic == "" || e.Topic[0] == 0 || len(e.Topic) > 255 {
				t.Fatalf("entry %d has invalid topic %q", i, e.Topic)
			}
		}
		if re := envelope.AppendTable(nil, tab); !bytes.Equal(re, p) {
			t.Fatalf("re-encoded table differs:\n got % x\nwant % x", re, p)
		}
	})
}

// TestFuzzCorpus keeps the committed seed corpus meaningful: files named
// bad_* must be rejected and all others must decode.
func TestFuzzCorpus(t *testing.T) {
	for _, fuzzer := range []string{"FuzzDecode", "FuzzDecodeMulti", "FuzzParseTable"} {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Run(fuzzer+"/"+e.Name(), func(t *testing.T) {
				data, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				args := parseCorpusFile(t, data)
				switch fuzzer {
				case "FuzzDecode":
					if len(args) != 3 {
						t.Fatalf("%d []byte values, want 3", len(args))
					}
					_, err = envelope.Decode(args, envelope.Limits{})
				case "FuzzDecodeMulti":
					if len(args) != 4 {
						t.Fatalf("%d []byte values, want 4", len(args))
					}
					_, err = envelope.Decode(args, envelope.Limits{})
				case "FuzzParseTable":
					if len(args) != 1 {
						t.Fatalf("%d []byte values, want 1", len(args))
					}
					_, err = envelope.ParseTable(args[0])
				}
				if bad := strings.HasPrefix(e.Name(), "bad_"); bad != (err != nil) {
					t.Errorf("bad=%v, error %v", bad, err)
				}
			})
		}
	}
}

// parseCorpusFile returns the []byte values of a "go test fuzz v1" file.
func parseCorpusFile(t *testing.T, data []byte) [][]byte {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if lines[0] != "go test fuzz v1" {
		t.Fatalf("header line %q", lines[0])
	}
	var out [][]byte
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "[]byte(") && strings.HasSuffix(l, ")"):
			s, err := strconv.Unquote(l[len("[]byte(") : len(l)-1])
			if err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			out = append(out, []byte(s))
		case strings.HasPrefix(l, "int("):
		default:
			t.Fatalf("unexpected line %q", l)
		}
	}
	return out
}

func FuzzParseLoss(f *testing.F) {
	f.Add(envelope.AppendLoss(nil, envelope.Loss{Topic: "a", From: 1, To: 1, Cause: "unknown"}))
	f.Add(envelope.AppendLoss(nil, envelope.Loss{Topic: "orders.eu", From: 7, To: 1 << 40, Cause: "beyond-retention"}))
	f.Add(envelope.AppendLoss(nil, envelope.Loss{Topic: "a", From: 2, To: 1, Cause: "x"}))
	f.Add(envelope.AppendLoss(nil, envelope.Loss{Topic: "\x00a", From: 1, To: 1, Cause: "x"}))
	f.Add(envelope.AppendLoss(nil, envelope.Loss{Topic: "a", From: 1, To: 1, Cause: "a b"}))
	f.Add([]byte{})
	f.Add([]byte{1, 'a'})
	f.Fuzz(func(t *testing.T, p []byte) {
		orig := slices.Clone(p)
		l, err := envelope.ParseLoss(p)
		if !bytes.Equal(p, orig) {
			t.Fatal("ParseLoss modified its input")
		}
		fr, _ := envelope.Encode(nil, envelope.ControlTopic, controlHeader(envelope.KindLoss), p)
		_, derr := envelope.Decode(fr[:], envelope.Limits{})
		if err != nil {
			checkSentinel(t, err, envelope.ErrLoss)
			if derr == nil {
				t.Fatalf("ParseLoss: %v, but Decode accepted it", err)
			}
			return
		}
		if derr != nil {
			t.Fatalf("ParseLoss accepted %+v, Decode: %v", l, derr)
		}
		if got := envelope.AppendLoss(nil, l); !bytes.Equal(got, p) {
			t.Fatalf("%+v encodes to %x, parsed from %x", l, got, p)
		}
	})
}

// checkDecodeInProcess holds DecodeInProcess to Decode: the same message
// or the same error, except where Decode finds a checksum mismatch, which
// is no concern of DecodeInProcess. What it accepts there must still be
// safe to iterate.
func checkDecodeInProcess(t *testing.T, frames [][]byte, lim envelope.Limits) {
	t.Helper()
	want, werr := envelope.Decode(frames, lim)
	got, gerr := envelope.DecodeInProcess(frames, lim)
	if errors.Is(werr, envelope.ErrChecksum) {
		if gerr != nil {
			if errors.Is(gerr, envelope.ErrChecksum) {
				t.Fatalf("DecodeInProcess checked the checksum: %v", gerr)
			}
			return
		}
		n := 0
		if got.Kind == envelope.KindMulti {
			for range got.MultiRecords() {
				n++
			}
		} else {
			for range got.Records() {
				n++
			}
		}
		if got.Kind == envelope.KindData && got.Flags&envelope.FlagBatch != 0 && n != int(got.Count) || got.Kind == envelope.KindMulti && n != int(got.Count) {
			t.Fatalf("%d records, header says %d", n, got.Count)
		}
		return
	}
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		t.Fatalf("Decode: %v, DecodeInProcess: %v", werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("Decode: %+v, DecodeInProcess: %+v", want, got)
	}
}
