package fetch

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func testManyRequest() ManyRequest {
	return ManyRequest{ID: 0x01020304, Publisher: testPub, Epoch: 7, Ranges: []Range{
		{Topic: "orders", From: 100, To: 199},
		{Topic: "fx", From: 1, To: 1},
	}}
}

// TestManyRequestGolden pins the FETCH_MANY layout documented in doc.go.
func TestManyRequestGolden(t *testing.T) {
	got := hex.EncodeToString(EncodeManyRequest(nil, testManyRequest()))
	want := "5352" + "01" + "02" + "01020304" +
		"000102030405060708090a0b0c0d0e0f" +
		"0000000000000007" + "0002" +
		"0000000000000064" + "00000000000000c7" + "06" + hex.EncodeToString([]byte("orders")) +
		"0000000000000001" + "0000000000000001" + "02" + hex.EncodeToString([]byte("fx"))
	if got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	if n := testManyRequest().Size(); n != len(want)/2 || n != ManyRequestHeaderSize+EntrySize("orders")+EntrySize("fx") {
		t.Fatalf("Size = %d, frame is %d bytes", n, len(want)/2)
	}
}

func TestDoneManyGolden(t *testing.T) {
	got := hex.EncodeToString(AppendDoneMany(nil, 9, DoneMany{Epoch: 7, Ranges: []RangeDone{
		{Status: StatusPartial, FirstHeld: 150, LastSeq: 300},
		{Status: StatusBeyondEnd, FirstHeld: 1, LastSeq: 2},
	}}))
	want := "5352010d00000009" + "0000000000000007" + "0002" +
		"01" + "0000000000000096" + "000000000000012c" +
		"04" + "0000000000000001" + "0000000000000002"
	if got != want {
		t.Fatalf("DONE_MANY\n got %s\nwant %s", got, want)
	}
}

// maxManyRequest returns the largest valid FETCH_MANY: MaxManyEntries
// entries with topics as long as still fit in MaxManyRequestSize.
func maxManyRequest() ManyRequest {
	per := (MaxManyRequestSize-ManyRequestHeaderSize)/MaxManyEntries - ManyEntryHeaderSize
	r := ManyRequest{ID: ^uint32(0), Epoch: ^uint64(0), Ranges: make([]Range, MaxManyEntries)}
	for i := range r.Ranges {
		r.Ranges[i] = Range{Topic: fmt.Sprintf("%0*d", per, i), From: 1, To: ^uint64(0)}
	}
	return r
}

func TestManyRequestRoundTrip(t *testing.T) {
	long := ManyRequest{Epoch: 1}
	for i := 0; len(long.Ranges) < MaxManyEntries && long.Size()+EntrySize(strings.Repeat("t", MaxTopic)) <= MaxManyRequestSize; i++ {
		long.Ranges = append(long.Ranges, Range{Topic: strings.Repeat(string(rune('a'+i%26)), MaxTopic), From: uint64(i) + 1, To: uint64(i) + 1})
	}
	for _, r := range []ManyRequest{
		testManyRequest(),
		{Ranges: []Range{{Topic: "x", From: 1, To: 1}}},
		{Ranges: []Range{{Topic: "x", From: 1, To: 5}, {Topic: "x", From: 9, To: 9}}}, // one topic twice
		maxManyRequest(),
		long,
	} {
		if err := r.Validate(); err != nil {
			t.Fatalf("%d entries: %v", len(r.Ranges), err)
		}
		b := EncodeManyRequest([]byte("prefix"), r)
		if !bytes.HasPrefix(b, []byte("prefix")) || len(b)-len("prefix") != r.Size() {
			t.Fatal("EncodeManyRequest did not append Size bytes")
		}
		frame := b[len("prefix"):]
		got, err := DecodeManyRequest(frame)
		if err != nil {
			t.Fatalf("%d entries: %v", len(r.Ranges), err)
		}
		if got.ID != r.ID || got.Publisher != r.Publisher || got.Epoch != r.Epoch || len(got.Ranges) != len(r.Ranges) {
			t.Fatalf("round trip: %+v", got)
		}
		for i := range r.Ranges {
			if got.Ranges[i] != r.Ranges[i] {
				t.Fatalf("entry %d: %+v, want %+v", i, got.Ranges[i], r.Ranges[i])
			}
		}
		if typ, ok := RequestType(frame); !ok || typ != TypeFetchMany {
			t.Fatalf("RequestType = %v, %v", typ, ok)
		}
		// The decoded topics do not alias the frame.
		clear(frame)
		if got.Ranges[0].Topic != r.Ranges[0].Topic {
			t.Fatal("decoded topic aliases the frame")
		}
	}
	if n := maxManyRequest().Size(); n > MaxManyRequestSize || n < MaxManyRequestSize-MaxManyEntries {
		t.Fatalf("largest request is %d bytes", n)
	}
	if typ, ok := RequestType(EncodeRequest(nil, testRequest())); !ok || typ != TypeFetch {
		t.Fatalf("RequestType of a FETCH = %v, %v", typ, ok)
	}
	if _, ok := RequestType([]byte("SR\x02")); ok {
		t.Fatal("RequestType of a 3-byte frame")
	}
}

func TestManyRequestCount(t *testing.T) {
	r := testManyRequest()
	if n := r.Count(); n != 101 {
		t.Fatalf("Count = %d, want 101", n)
	}
	r.Ranges = append(r.Ranges, Range{Topic: "a", From: 1, To: ^uint64(0)})
	if n := r.Count(); n != ^uint64(0) {
		t.Fatalf("Count does not saturate: %d", n)
	}
	if n := (Range{From: 3, To: 2}).Count(); n != 0 {
		t.Fatalf("Count of an empty range = %d", n)
	}
}

func TestDecodeManyRequestErrors(t *testing.T) {
	good := EncodeManyRequest(nil, testManyRequest())
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	enc := func(rs ...Range) []byte { return EncodeManyRequest(nil, ManyRequest{Ranges: rs}) }
	tooMany := make([]Range, MaxManyEntries+1)
	for i := range tooMany {
		tooMany[i] = Range{Topic: "t", From: 1, To: 1}
	}
	oversize := maxManyRequest()
	for i := range 5 { // 1000 bytes more than the largest valid request
		oversize.Ranges[i].Topic += strings.Repeat("x", 200)
	}
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrLength},
		{"short header", good[:7], ErrLength},
		{"magic", mod(func(b []byte) []byte { b[1] = 'X'; return b }), ErrMagic},
		{"version", mod(func(b []byte) []byte { b[2] = 0; return b }), ErrVersion},
		{"fetch", EncodeRequest(nil, testRequest()), ErrType},
		{"response type", mod(func(b []byte) []byte { b[3] = byte(TypeDoneMany); return b }), ErrType},
		{"truncated fixed part", good[:33], ErrLength},
		{"no entries", enc(), ErrCount},
		{"too many entries", EncodeManyRequest(nil, ManyRequest{Ranges: tooMany}), ErrCount},
		{"count above entries", mod(func(b []byte) []byte { b[33] = 3; return b }), ErrLength},
		{"count below entries", mod(func(b []byte) []byte { b[33] = 1; return b }), ErrLength},
		{"truncated entry", good[:len(good)-3], ErrLength},
		{"truncated entry header", good[:ManyRequestHeaderSize+5], ErrLength},
		{"trailing byte", append(append([]byte(nil), good...), 'x'), ErrLength},
		{"oversize", EncodeManyRequest(nil, oversize), ErrLength},
		{"empty topic", enc(Range{Topic: "a", From: 1, To: 1}, Range{From: 1, To: 1}), ErrTopic},
		{"zero topic", enc(Range{Topic: "\x00x", From: 1, To: 1}), ErrTopic},
		{"from zero", enc(Range{Topic: "a", From: 1, To: 1}, Range{Topic: "t", To: 1}), ErrRange},
		{"to below from", enc(Range{Topic: "t", From: 5, To: 4}), ErrRange},
	}
	for _, tc := range tests {
		r, err := DecodeManyRequest(tc.frame)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			continue
		}
		var de *DecodeError
		if !errors.As(err, &de) || de.Kind != tc.want || !strings.HasPrefix(err.Error(), "fetch: ") || r.Ranges != nil {
			t.Errorf("%s: %#v, %+v", tc.name, err, r)
		}
	}
	// Validate agrees with DecodeManyRequest.
	for _, r := range []ManyRequest{
		{},
		{Ranges: tooMany},
		oversize,
		{Ranges: []Range{{From: 1, To: 1}}},
		{Ranges: []Range{{Topic: "t", From: 0, To: 1}}},
		{Ranges: []Range{{Topic: "t", From: 2, To: 1}}},
	} {
		if err := r.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Validate(%d entries) = %v", len(r.Ranges), err)
		}
	}
}

func TestDoneManyRoundTrip(t *testing.T) {
	all := make([]RangeDone, MaxManyEntries)
	for i := range all {
		all[i] = RangeDone{Status: Status(i % 5), FirstHeld: uint64(i), LastSeq: uint64(2 * i)}
	}
	for _, d := range []DoneMany{
		{Epoch: 3, Ranges: []RangeDone{{Status: StatusComplete, FirstHeld: 1, LastSeq: 10}}},
		{Epoch: ^uint64(0), Ranges: []RangeDone{{Status: StatusUnknownEpoch}, {Status: StatusUnknownTopic}, {Status: StatusBeyondEnd, FirstHeld: 4, LastSeq: 4}}},
		{Ranges: all},
	} {
		r, err := DecodeResponse([][]byte{AppendDoneMany(nil, 77, d)})
		if err != nil || r.Type != TypeDoneMany || r.ID != 77 || r.Many.Epoch != d.Epoch || len(r.Many.Ranges) != len(d.Ranges) {
			t.Fatalf("%d entries: %+v, %v", len(d.Ranges), r, err)
		}
		for i := range d.Ranges {
			if r.Many.Ranges[i] != d.Ranges[i] {
				t.Fatalf("entry %d: %+v, want %+v", i, r.Many.Ranges[i], d.Ranges[i])
			}
		}
	}
}

func TestDecodeDoneManyErrors(t *testing.T) {
	good := AppendDoneMany(nil, 1, DoneMany{Epoch: 1, Ranges: []RangeDone{{Status: StatusComplete, FirstHeld: 1, LastSeq: 2}, {}}})
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name   string
		frames [][]byte
		want   error
	}{
		{"extra frame", [][]byte{good, {}}, ErrFrameCount},
		{"short", [][]byte{good[:DoneManyHeaderSize-1]}, ErrLength},
		{"no entries", [][]byte{AppendDoneMany(nil, 1, DoneMany{})}, ErrCount},
		{"too many entries", [][]byte{AppendDoneMany(nil, 1, DoneMany{Ranges: make([]RangeDone, MaxManyEntries+1)})}, ErrCount},
		{"truncated", [][]byte{good[:len(good)-1]}, ErrLength},
		{"trailing", [][]byte{append(append([]byte(nil), good...), 0)}, ErrLength},
		{"status", [][]byte{mod(func(b []byte) []byte { b[DoneManyHeaderSize+DoneManyEntrySize] = 5; return b })}, ErrStatus},
		{"first above last", [][]byte{AppendDoneMany(nil, 1, DoneMany{Ranges: []RangeDone{{}, {FirstHeld: 3, LastSeq: 2}}})}, ErrRange},
	}
	for _, tc := range tests {
		r, err := DecodeResponse(tc.frames)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if r.Many.Ranges != nil {
			t.Errorf("%s: entries returned with an error", tc.name)
		}
	}
}

func TestManyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := testManyRequest()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { _ = EncodeManyRequest(buf[:0], r) }); n != 0 {
		t.Errorf("EncodeManyRequest allocates %v times", n)
	}
	frame := EncodeManyRequest(nil, r)
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeManyRequest(frame) }); n != 2 {
		t.Errorf("DecodeManyRequest allocates %v times, want 2 (ranges and topics)", n)
	}
	d := DoneMany{Epoch: 1, Ranges: make([]RangeDone, 100)}
	if n := testing.AllocsPerRun(100, func() { _ = AppendDoneMany(buf[:0], 1, d) }); n != 0 {
		t.Errorf("AppendDoneMany allocates %v times", n)
	}
	done := [][]byte{AppendDoneMany(nil, 1, d)}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeResponse(done) }); n != 1 {
		t.Errorf("DecodeResponse(DONE_MANY) allocates %v times, want 1", n)
	}
}

func BenchmarkDecodeManyRequest(b *testing.B) {
	r := ManyRequest{Ranges: make([]Range, 500)}
	for i := range r.Ranges {
		r.Ranges[i] = Range{Topic: fmt.Sprintf("topic-%05d", i), From: 1, To: 100}
	}
	frame := EncodeManyRequest(nil, r)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeManyRequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}
