package fetch

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

var testPub = envelope.ID{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}

func testRequest() Request {
	return Request{ID: 0x01020304, Publisher: testPub, Epoch: 7, From: 100, To: 199, Topic: "orders"}
}

// TestRequestGolden pins the byte layout documented in proto.go, so a
// client in another language can be checked against it.
func TestRequestGolden(t *testing.T) {
	got := hex.EncodeToString(EncodeRequest(nil, testRequest()))
	want := "5352" + "01" + "01" + "01020304" +
		"000102030405060708090a0b0c0d0e0f" +
		"0000000000000007" + "0000000000000064" + "00000000000000c7" +
		"06" + hex.EncodeToString([]byte("orders"))
	if got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

func TestResponseGolden(t *testing.T) {
	done := hex.EncodeToString(AppendDone(nil, 9, Done{Status: StatusPartial, FirstHeld: 150, LastSeq: 300, Epoch: 7}))
	want := "5352010b00000009" + "01" + "0000000000000096" + "000000000000012c" + "0000000000000007"
	if done != want {
		t.Fatalf("DONE\n got %s\nwant %s", done, want)
	}
	e := hex.EncodeToString(AppendError(nil, 9, ErrorReply{Code: CodeRateLimited, Text: "slow down"}))
	if want := "5352010c00000009" + "0002" + hex.EncodeToString([]byte("slow down")); e != want {
		t.Fatalf("ERROR\n got %s\nwant %s", e, want)
	}
	if h := hex.EncodeToString(AppendResponseHeader(nil, TypeReplay, 9)); h != "5352010a00000009" {
		t.Fatalf("REPLAY header %s", h)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []Request{
		testRequest(),
		{From: 1, To: 1, Topic: "x"},
		{ID: ^uint32(0), Epoch: ^uint64(0), From: 1, To: ^uint64(0), Topic: strings.Repeat("t", MaxTopic)},
	} {
		if err := r.Validate(); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		b := EncodeRequest([]byte("prefix"), r)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal("EncodeRequest did not append")
		}
		got, err := DecodeRequest(b[len("prefix"):])
		if err != nil || got != r {
			t.Fatalf("round trip %+v: %+v, %v", r, got, err)
		}
		if id, ok := RequestID(b[len("prefix"):]); !ok || id != r.ID {
			t.Fatalf("RequestID = %d, %v", id, ok)
		}
	}
}

func TestRequestCount(t *testing.T) {
	for _, c := range []struct {
		from, to, n uint64
	}{{1, 1, 1}, {5, 14, 10}, {0, 5, 0}, {5, 4, 0}, {1, ^uint64(0), ^uint64(0)}, {2, ^uint64(0), ^uint64(0) - 1}} {
		if n := (Request{From: c.from, To: c.to}).Count(); n != c.n {
			t.Errorf("Count(%d, %d) = %d, want %d", c.from, c.to, n, c.n)
		}
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	good := EncodeRequest(nil, testRequest())
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrLength},
		{"short header", good[:7], ErrLength},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMagic},
		{"version", mod(func(b []byte) []byte { b[2] = 2; return b }), ErrVersion},
		{"response type", mod(func(b []byte) []byte { b[3] = byte(TypeDone); return b }), ErrType},
		{"unknown type", mod(func(b []byte) []byte { b[3] = 3; return b }), ErrType},
		// A FETCH-only decoder rejects FETCH_MANY, as a version 1.0 server does.
		{"fetch many", EncodeManyRequest(nil, testManyRequest()), ErrType},
		{"truncated fixed part", good[:40], ErrLength},
		{"truncated topic", good[:len(good)-1], ErrLength},
		{"trailing byte", append(append([]byte(nil), good...), 'x'), ErrLength},
		{"empty topic", EncodeRequest(nil, Request{From: 1, To: 1}), ErrTopic},
		{"zero topic", EncodeRequest(nil, Request{From: 1, To: 1, Topic: "\x00syncmq"}), ErrTopic},
		{"topic too long", EncodeRequest(nil, Request{From: 1, To: 1, Topic: strings.Repeat("t", 256)}), ErrLength},
		{"topic too long 300", EncodeRequest(nil, Request{From: 1, To: 1, Topic: strings.Repeat("t", 300)}), ErrLength},
		{"from zero", EncodeRequest(nil, Request{From: 0, To: 1, Topic: "t"}), ErrRange},
		{"to below from", EncodeRequest(nil, Request{From: 5, To: 4, Topic: "t"}), ErrRange},
	}
	for _, tc := range tests {
		_, err := DecodeRequest(tc.frame)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			continue
		}
		var de *DecodeError
		if !errors.As(err, &de) || de.Kind != tc.want || !strings.HasPrefix(err.Error(), "fetch: ") {
			t.Errorf("%s: %#v", tc.name, err)
		}
	}
	// Validate agrees with DecodeRequest.
	for _, r := range []Request{{From: 1, To: 1}, {From: 0, To: 1, Topic: "t"}, {From: 2, To: 1, Topic: "t"}, {From: 1, To: 1, Topic: "\x00"}} {
		if err := r.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Validate(%+v) = %v", r, err)
		}
	}
	if _, ok := RequestID([]byte("SR")); ok {
		t.Error("RequestID of a 2-byte frame")
	}
	// A request of another version still names its id, so the ERROR
	// answering it reaches the client waiting for it (1.0 answered id 0).
	v2 := EncodeRequest(nil, Request{ID: 77, From: 1, To: 1, Topic: "t"})
	v2[2] = 2
	if _, err := DecodeRequest(v2); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2 FETCH: %v", err)
	}
	if id, ok := RequestID(v2); !ok || id != 77 {
		t.Errorf("RequestID of a version 2 FETCH = %d, %v; want 77", id, ok)
	}
	if _, ok := RequestID([]byte("XX\x01\x01\x00\x00\x00\x01")); ok {
		t.Error("RequestID without the magic")
	}
	if CodeVersion.String() != "version" {
		t.Error(CodeVersion.String())
	}
}

// replayFrames builds a REPLAY response for records of seqs starting at seq.
func replayFrames(id uint32, flags envelope.Flags, seq uint64, payloads ...string) [][]byte {
	var b envelope.Builder
	b.Begin(nil, "orders", envelope.Header{Kind: envelope.KindData, Flags: flags, Publisher: testPub, Epoch: 7, Seq: seq, Time: 42})
	for _, p := range payloads {
		b.Add([]byte(p))
	}
	f, _ := b.Finish()
	return [][]byte{AppendResponseHeader(nil, TypeReplay, id), f[0], f[1], f[2]}
}

func TestDecodeReplay(t *testing.T) {
	for _, payloads := range [][]string{{"one"}, {"one", "two", "three"}} {
		r, err := DecodeResponse(replayFrames(5, envelope.FlagReplay, 10, payloads...))
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != TypeReplay || r.ID != 5 || r.Message.Publisher != testPub || r.Message.Epoch != 7 || string(r.Message.Topic) != "orders" {
			t.Fatalf("%+v", r)
		}
		var got []string
		want := uint64(10)
		for seq, p := range r.Message.Records() {
			if seq != want {
				t.Fatalf("seq %d, want %d", seq, want)
			}
			want++
			got = append(got, string(p))
		}
		if strings.Join(got, ",") != strings.Join(payloads, ",") {
			t.Fatalf("records %v", got)
		}
	}
}

func TestDecodeResponseRoundTrip(t *testing.T) {
	for _, d := range []Done{
		{Status: StatusComplete, FirstHeld: 1, LastSeq: 10, Epoch: 3},
		{Status: StatusPartial, FirstHeld: 5, LastSeq: 5},
		{Status: StatusUnknownEpoch, Epoch: ^uint64(0)},
		{Status: StatusUnknownTopic},
	} {
		r, err := DecodeResponse([][]byte{AppendDone(nil, 77, d)})
		if err != nil || r.Type != TypeDone || r.ID != 77 || r.Done != d {
			t.Fatalf("%+v: %+v, %v", d, r, err)
		}
	}
	for _, e := range []ErrorReply{
		{Code: CodeMalformed},
		{Code: CodeBusy, Text: "busy, retry in 100ms"},
		{Code: 999, Text: "ünïcode ✓"},
	} {
		r, err := DecodeResponse([][]byte{AppendError(nil, 1, e)})
		if err != nil || r.Type != TypeError || r.Error != e {
			t.Fatalf("%+v: %+v, %v", e, r, err)
		}
	}
}

func TestAppendErrorClipsText(t *testing.T) {
	long := strings.Repeat("é", MaxErrorText) // 2 bytes each
	r, err := DecodeResponse([][]byte{AppendError(nil, 1, ErrorReply{Code: CodeBusy, Text: long})})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Error.Text) != MaxErrorText || r.Error.Text != long[:MaxErrorText] {
		t.Fatalf("clipped to %d bytes", len(r.Error.Text))
	}
	long = "x" + long // odd: the cut must back off to a character boundary
	r, err = DecodeResponse([][]byte{AppendError(nil, 1, ErrorReply{Code: CodeBusy, Text: long})})
	if err != nil || len(r.Error.Text) != MaxErrorText-1 {
		t.Fatalf("clipped to %d bytes, %v", len(r.Error.Text), err)
	}
	r, err = DecodeResponse([][]byte{AppendError(nil, 1, ErrorReply{Code: CodeBusy, Text: "bad \xff byte"})})
	if err != nil || r.Error.Text != "bad \uFFFD byte" {
		t.Fatalf("%q, %v", r.Error.Text, err)
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	done := AppendDone(nil, 1, Done{Status: StatusComplete, FirstHeld: 1, LastSeq: 2})
	replay := replayFrames(1, envelope.FlagReplay, 1, "x")
	badCRC := replayFrames(1, envelope.FlagReplay, 1, "x")
	badCRC[3] = []byte("y")
	errFrame := AppendError(nil, 1, ErrorReply{Code: 1, Text: "x"})
	tests := []struct {
		name   string
		frames [][]byte
		want   error
	}{
		{"no frames", nil, ErrFrameCount},
		{"short", [][]byte{done[:5]}, ErrLength},
		{"magic", [][]byte{append([]byte("XR"), done[2:]...)}, ErrMagic},
		{"version", [][]byte{append([]byte("SR\x09"), done[3:]...)}, ErrVersion},
		{"request type", [][]byte{EncodeRequest(nil, testRequest())}, ErrType},
		{"unknown type", [][]byte{AppendResponseHeader(nil, 14, 1)}, ErrType},
		{"done extra frame", [][]byte{done, {}}, ErrFrameCount},
		{"done short", [][]byte{done[:len(done)-1]}, ErrLength},
		{"done long", [][]byte{append(append([]byte(nil), done...), 0)}, ErrLength},
		{"done status", [][]byte{func() []byte { b := append([]byte(nil), done...); b[8] = 5; return b }()}, ErrStatus},
		{"done beyond end", [][]byte{AppendDone(nil, 1, Done{Status: StatusBeyondEnd})}, ErrStatus},
		{"done first above last", [][]byte{AppendDone(nil, 1, Done{FirstHeld: 3, LastSeq: 2})}, ErrRange},
		{"error extra frame", [][]byte{errFrame, {}}, ErrFrameCount},
		{"error short", [][]byte{errFrame[:9]}, ErrLength},
		{"error long", [][]byte{append(AppendError(nil, 1, ErrorReply{}), strings.Repeat("x", MaxErrorText+1)...)}, ErrLength},
		{"error utf8", [][]byte{append(AppendError(nil, 1, ErrorReply{}), 0xff)}, ErrText},
		{"replay frames", replay[:3], ErrFrameCount},
		{"replay header long", [][]byte{append(append([]byte(nil), replay[0]...), 0), replay[1], replay[2], replay[3]}, ErrLength},
		{"replay not a replay", replayFrames(1, 0, 1, "x"), ErrNotReplay},
		{"replay bad envelope", badCRC, ErrEnvelope},
		{"replay control message", func() [][]byte {
			f, _ := envelope.Encode(nil, envelope.ControlTopic, envelope.Header{Kind: envelope.KindHeartbeat}, envelope.AppendTable(nil, nil))
			return [][]byte{AppendResponseHeader(nil, TypeReplay, 1), f[0], f[1], f[2]}
		}(), ErrNotReplay},
	}
	for _, tc := range tests {
		_, err := DecodeResponse(tc.frames)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := DecodeResponse(badCRC); !errors.Is(err, envelope.ErrChecksum) {
		t.Errorf("envelope cause not wrapped: %v", err)
	}
}

func TestProtoStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{TypeFetch.String(), "FETCH"}, {TypeReplay.String(), "REPLAY"}, {TypeDone.String(), "DONE"},
		{TypeError.String(), "ERROR"}, {Type(3).String(), "Type(3)"},
		{TypeFetchMany.String(), "FETCH_MANY"}, {TypeDoneMany.String(), "DONE_MANY"}, {StatusBeyondEnd.String(), "beyond-end"},
		{StatusComplete.String(), "complete"}, {StatusPartial.String(), "partial"},
		{StatusUnknownEpoch.String(), "unknown-epoch"}, {StatusUnknownTopic.String(), "unknown-topic"}, {Status(7).String(), "Status(7)"},
		{CodeMalformed.String(), "malformed"}, {CodeRateLimited.String(), "rate-limited"},
		{CodeRangeTooLarge.String(), "range-too-large"}, {CodeBusy.String(), "busy"}, {ErrorCode(9).String(), "code(9)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
