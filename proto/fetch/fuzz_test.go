package fetch

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora under testdata/fuzz")

type namedSeed struct {
	name string
	args []any
}

func requestSeeds() []namedSeed {
	good := EncodeRequest(nil, testRequest())
	return []namedSeed{
		{"fetch", []any{good}},
		{"fetch-min", []any{EncodeRequest(nil, Request{From: 1, To: 1, Topic: "a"})}},
		{"fetch-max", []any{EncodeRequest(nil, Request{ID: ^uint32(0), Publisher: envelope.ID{0xff}, Epoch: ^uint64(0), From: 1, To: ^uint64(0), Topic: strings.Repeat("z", MaxTopic)})}},
		{"fetch-empty-topic", []any{EncodeRequest(nil, Request{From: 1, To: 1})}},
		{"fetch-reversed", []any{EncodeRequest(nil, Request{From: 9, To: 3, Topic: "t"})}},
		{"fetch-truncated", []any{good[:len(good)-2]}},
		{"done-as-request", []any{AppendDone(nil, 1, Done{})}},
		{"header-only", []any{good[:ResponseHeaderSize]}},
		{"empty", []any{[]byte{}}},
		{"fetch-many-as-fetch", []any{EncodeManyRequest(nil, testManyRequest())}},
	}
}

func manyRequestSeeds() []namedSeed {
	good := EncodeManyRequest(nil, testManyRequest())
	one := EncodeManyRequest(nil, ManyRequest{Ranges: []Range{{Topic: "a", From: 1, To: 1}}})
	return []namedSeed{
		{"fetch-many", []any{good}},
		{"fetch-many-one", []any{one}},
		{"fetch-many-same-topic", []any{EncodeManyRequest(nil, ManyRequest{Epoch: 2, Ranges: []Range{{Topic: "t", From: 1, To: 4}, {Topic: "t", From: 9, To: ^uint64(0)}}})}},
		{"fetch-many-max", []any{EncodeManyRequest(nil, maxManyRequest())}},
		{"fetch-many-no-entries", []any{EncodeManyRequest(nil, ManyRequest{})}},
		{"fetch-many-count-high", []any{func() []byte { b := append([]byte(nil), good...); b[33] = 3; return b }()}},
		{"fetch-many-empty-topic", []any{EncodeManyRequest(nil, ManyRequest{Ranges: []Range{{From: 1, To: 1}}})}},
		{"fetch-many-reversed", []any{EncodeManyRequest(nil, ManyRequest{Ranges: []Range{{Topic: "t", From: 9, To: 3}}})}},
		{"fetch-many-truncated", []any{good[:len(good)-1]}},
		{"fetch-many-trailing", []any{append(append([]byte(nil), one...), 0)}},
		{"fetch-as-fetch-many", []any{EncodeRequest(nil, testRequest())}},
		{"header-only", []any{good[:ResponseHeaderSize]}},
		{"empty", []any{[]byte{}}},
	}
}

func responseSeed(name string, frames ...[]byte) namedSeed {
	args := []any{byte(len(frames))}
	for i := 0; i < 4; i++ {
		if i < len(frames) {
			args = append(args, frames[i])
		} else {
			args = append(args, []byte{})
		}
	}
	return namedSeed{name, args}
}

func responseSeeds() []namedSeed {
	badCRC := replayFrames(3, envelope.FlagReplay, 5, "x")
	badCRC[3] = []byte("y")
	return []namedSeed{
		responseSeed("replay-one", replayFrames(3, envelope.FlagReplay, 5, "payload")...),
		responseSeed("replay-batch", replayFrames(3, envelope.FlagReplay, 5, "a", "", "ccc")...),
		responseSeed("replay-not-flagged", replayFrames(3, 0, 5, "payload")...),
		responseSeed("replay-bad-crc", badCRC...),
		responseSeed("done-complete", AppendDone(nil, 3, Done{Status: StatusComplete, FirstHeld: 1, LastSeq: 10, Epoch: 7})),
		responseSeed("done-partial", AppendDone(nil, 3, Done{Status: StatusPartial, FirstHeld: 6, LastSeq: 10, Epoch: 7})),
		responseSeed("done-unknown-epoch", AppendDone(nil, 3, Done{Status: StatusUnknownEpoch, Epoch: 8})),
		responseSeed("done-unknown-topic", AppendDone(nil, 3, Done{Status: StatusUnknownTopic})),
		responseSeed("error-busy", AppendError(nil, 3, ErrorReply{Code: CodeBusy, Text: "busy"})),
		responseSeed("error-range", AppendError(nil, 3, ErrorReply{Code: CodeRangeTooLarge, Text: "at most 4096"})),
		responseSeed("error-empty", AppendError(nil, 3, ErrorReply{Code: CodeRateLimited})),
		responseSeed("request-as-response", EncodeRequest(nil, testRequest())),
		responseSeed("nothing"),
		responseSeed("done-many", AppendDoneMany(nil, 3, DoneMany{Epoch: 7, Ranges: []RangeDone{
			{Status: StatusComplete, FirstHeld: 1, LastSeq: 10}, {Status: StatusPartial, FirstHeld: 6, LastSeq: 10},
			{Status: StatusUnknownTopic}, {Status: StatusBeyondEnd, FirstHeld: 1, LastSeq: 3},
		}})),
		responseSeed("done-many-unknown-epoch", AppendDoneMany(nil, 3, DoneMany{Epoch: 8, Ranges: []RangeDone{{Status: StatusUnknownEpoch}}})),
		responseSeed("done-many-no-entries", AppendDoneMany(nil, 3, DoneMany{Epoch: 7})),
		responseSeed("done-many-bad-status", AppendDoneMany(nil, 3, DoneMany{Ranges: []RangeDone{{Status: 5}}})),
		responseSeed("done-beyond-end", AppendDone(nil, 3, Done{Status: StatusBeyondEnd, LastSeq: 2})),
		responseSeed("fetch-many-as-response", EncodeManyRequest(nil, testManyRequest())),
	}
}

// marshalCorpus encodes args in the "go test fuzz v1" format.
func marshalCorpus(args []any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		default:
			panic(fmt.Sprintf("unsupported corpus type %T", a))
		}
	}
	return b.Bytes()
}

// TestFuzzSeedCorpus keeps the committed seed corpora under testdata/fuzz in
// step with the seeds above; run with -update-corpus to rewrite them.
func TestFuzzSeedCorpus(t *testing.T) {
	for target, seeds := range map[string][]namedSeed{
		"FuzzDecodeRequest":     requestSeeds(),
		"FuzzDecodeManyRequest": manyRequestSeeds(),
		"FuzzDecodeResponse":    responseSeeds(),
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			path := filepath.Join(dir, "seed-"+s.name)
			want := marshalCorpus(s.args)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s is missing or stale (%v); run go test -run TestFuzzSeedCorpus -update-corpus", path, err)
			}
		}
	}
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.Is(err, ErrMalformed) || !errors.As(err, &de) || !strings.HasPrefix(err.Error(), "fetch: ") {
		t.Fatalf("untyped decode error: %#v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add(s.args[0].([]byte))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, err := DecodeRequest(frame)
		if err != nil {
			checkDecodeError(t, err)
			if r != (Request{}) {
				t.Fatalf("error with a non-zero request %+v", r)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded request does not validate: %v", err)
		}
		if b := EncodeRequest(nil, r); !bytes.Equal(b, frame) {
			t.Fatalf("round trip:\n in % x\nout % x", frame, b)
		}
		if id, ok := RequestID(frame); !ok || id != r.ID {
			t.Fatalf("RequestID = %d, %v; want %d", id, ok, r.ID)
		}
		if _, err := DecodeManyRequest(frame); err == nil {
			t.Fatal("a FETCH also decodes as a FETCH_MANY")
		}
	})
}

func FuzzDecodeManyRequest(f *testing.F) {
	for _, s := range manyRequestSeeds() {
		f.Add(s.args[0].([]byte))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, err := DecodeManyRequest(frame)
		if err != nil {
			checkDecodeError(t, err)
			if r.Ranges != nil || r.ID != 0 || r.Epoch != 0 {
				t.Fatalf("error with a non-zero request %+v", r)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded request does not validate: %v", err)
		}
		if r.Size() != len(frame) {
			t.Fatalf("Size %d, frame %d bytes", r.Size(), len(frame))
		}
		if b := EncodeManyRequest(nil, r); !bytes.Equal(b, frame) {
			t.Fatalf("round trip:\n in % x\nout % x", frame, b)
		}
		if typ, ok := RequestType(frame); !ok || typ != TypeFetchMany {
			t.Fatalf("RequestType = %v, %v", typ, ok)
		}
		if _, err := DecodeRequest(frame); err == nil {
			t.Fatal("a FETCH_MANY also decodes as a FETCH")
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range responseSeeds() {
		a := s.args
		f.Add(a[0].(byte), a[1].([]byte), a[2].([]byte), a[3].([]byte), a[4].([]byte))
	}
	f.Fuzz(func(t *testing.T, n byte, f0, f1, f2, f3 []byte) {
		frames := [][]byte{f0, f1, f2, f3}[:int(n)%5]
		r, err := DecodeResponse(frames)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		switch r.Type {
		case TypeReplay:
			if h := AppendResponseHeader(nil, TypeReplay, r.ID); !bytes.Equal(h, f0) {
				t.Fatalf("header round trip: % x vs % x", h, f0)
			}
			// Rebuild the envelope from what was decoded; it must decode to
			// the same records.
			m := r.Message
			var b envelope.Builder
			b.Begin(nil, string(m.Topic), m.Header)
			var want [][]byte
			for seq, p := range m.Records() {
				if seq < m.Seq || seq > m.LastSeq() {
					t.Fatalf("record seq %d outside %d..%d", seq, m.Seq, m.LastSeq())
				}
				b.Add(p)
				want = append(want, p)
			}
			ef, _ := b.Finish()
			r2, err := DecodeResponse([][]byte{f0, ef[0], ef[1], ef[2]})
			if err != nil {
				t.Fatalf("re-encoded replay does not decode: %v", err)
			}
			var got [][]byte
			for _, p := range r2.Message.Records() {
				got = append(got, p)
			}
			if !slices.EqualFunc(got, want, bytes.Equal) || r2.Message.Seq != m.Seq || r2.Message.Publisher != m.Publisher || r2.Message.Epoch != m.Epoch {
				t.Fatalf("replay round trip changed the message")
			}
		case TypeDone:
			if b := AppendDone(nil, r.ID, r.Done); !bytes.Equal(b, f0) {
				t.Fatalf("DONE round trip:\n in % x\nout % x", f0, b)
			}
		case TypeDoneMany:
			if len(r.Many.Ranges) == 0 || len(r.Many.Ranges) > MaxManyEntries {
				t.Fatalf("DONE_MANY with %d entries", len(r.Many.Ranges))
			}
			if b := AppendDoneMany(nil, r.ID, r.Many); !bytes.Equal(b, f0) {
				t.Fatalf("DONE_MANY round trip:\n in % x\nout % x", f0, b)
			}
		case TypeError:
			if b := AppendError(nil, r.ID, r.Error); !bytes.Equal(b, f0) {
				t.Fatalf("ERROR round trip:\n in % x\nout % x", f0, b)
			}
		default:
			t.Fatalf("decoded unknown type %v", r.Type)
		}
	})
}
