package fetch

import (
	"encoding/binary"
	"fmt"

	"github.com/syncmq/syncmq/envelope"
)

// FETCH_MANY asks for several ranges, of one or more topics, of one
// publisher incarnation in one request, and DONE_MANY ends its answer with
// one outcome per range. The byte layout is in the package documentation.

// Limits of FETCH_MANY and DONE_MANY frames.
const (
	// ManyRequestHeaderSize is the size of a FETCH_MANY frame without its
	// entries: header, publisher id, epoch and entry count.
	ManyRequestHeaderSize = 34
	// ManyEntryHeaderSize is the size of one FETCH_MANY entry without its
	// topic: from, to and topic length.
	ManyEntryHeaderSize = 17
	// MaxManyEntries is the most ranges one FETCH_MANY may carry.
	MaxManyEntries = 1024
	// MaxManyRequestSize is the largest FETCH_MANY frame in bytes. It equals
	// the request frame limit of the publisher's recovery server (64 KiB),
	// so a valid FETCH_MANY is never cut off by the transport. With long
	// topics it binds before MaxManyEntries does: 1024 entries fit only
	// while their topics average at most 46 bytes.
	MaxManyRequestSize = 64 << 10
	// DoneManyHeaderSize is the size of a DONE_MANY frame without its
	// entries: header, epoch and entry count.
	DoneManyHeaderSize = ResponseHeaderSize + 8 + 2
	// DoneManyEntrySize is the size of one DONE_MANY entry: status, first
	// held and last sequence.
	DoneManyEntrySize = 1 + 8 + 8
)

// Range is one entry of a FETCH_MANY: the records From..To (inclusive) of
// Topic.
type Range struct {
	Topic    string
	From, To uint64
}

// Count is the number of sequences r asks for, To-From+1 (0 if the range
// is empty or invalid; saturating at the largest uint64).
func (r Range) Count() uint64 { return rangeCount(r.From, r.To) }

// EntrySize returns the bytes a FETCH_MANY entry naming topic takes, so a
// client can pack entries up to MaxManyRequestSize.
func EntrySize(topic string) int { return ManyEntryHeaderSize + len(topic) }

// ManyRequest is a decoded FETCH_MANY: send me each of Ranges of what
// Publisher published in Epoch.
type ManyRequest struct {
	// ID is chosen by the client and echoed in every response to this request.
	ID        uint32
	Publisher envelope.ID
	Epoch     uint64
	// Ranges are answered in this order. Several may name the same topic.
	Ranges []Range
}

// Size returns the length of r's encoded frame.
func (r ManyRequest) Size() int {
	n := ManyRequestHeaderSize
	for _, e := range r.Ranges {
		n += EntrySize(e.Topic)
	}
	return n
}

// Count is the total number of sequences r asks for, saturating at the
// largest uint64.
func (r ManyRequest) Count() uint64 {
	var n uint64
	for _, e := range r.Ranges {
		c := e.Count()
		if n+c < n {
			return ^uint64(0)
		}
		n += c
	}
	return n
}

// Validate reports whether r can be encoded and would be accepted by
// DecodeManyRequest: 1..MaxManyEntries ranges, each with a valid topic and
// range, in a frame of at most MaxManyRequestSize bytes. The error wraps
// ErrMalformed and one of ErrCount, ErrLength, ErrTopic or ErrRange.
func (r ManyRequest) Validate() error {
	if len(r.Ranges) == 0 || len(r.Ranges) > MaxManyEntries {
		return decodeErr(ErrCount, fmt.Sprintf("%d entries, want 1..%d", len(r.Ranges), MaxManyEntries))
	}
	for i, e := range r.Ranges {
		if err := checkTopic(e.Topic); err != nil {
			return err
		}
		if e.From == 0 || e.To < e.From {
			return decodeErr(ErrRange, fmt.Sprintf("entry %d: from %d to %d", i, e.From, e.To))
		}
	}
	if n := r.Size(); n > MaxManyRequestSize {
		return decodeErr(ErrLength, fmt.Sprintf("FETCH_MANY of %d bytes exceeds %d", n, MaxManyRequestSize))
	}
	return nil
}

// EncodeManyRequest appends the FETCH_MANY frame for r to dst and returns
// the extended slice. It does not validate r: call r.Validate first. An
// invalid request still encodes without panicking, to a frame
// DecodeManyRequest rejects.
func EncodeManyRequest(dst []byte, r ManyRequest) []byte {
	dst = appendHeader(dst, TypeFetchMany, r.ID)
	dst = append(dst, r.Publisher[:]...)
	dst = binary.BigEndian.AppendUint64(dst, r.Epoch)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Ranges)))
	for _, e := range r.Ranges {
		dst = binary.BigEndian.AppendUint64(dst, e.From)
		dst = binary.BigEndian.AppendUint64(dst, e.To)
		dst = append(dst, byte(len(e.Topic)))
		dst = append(dst, e.Topic...)
	}
	return dst
}

// RequestType returns the type of a request frame that starts with a valid
// header, so a server can pick DecodeRequest or DecodeManyRequest. ok is
// false when even the header is unusable.
func RequestType(frame []byte) (t Type, ok bool) {
	t, _, err := parseHeader(frame)
	return t, err == nil
}

// DecodeManyRequest decodes one FETCH_MANY frame. The topics are copied
// into one string that they share, so the frame may be reused afterwards;
// the only allocations are that string and the Ranges slice. Every error is
// a *DecodeError wrapping ErrMalformed. DecodeManyRequest never panics.
func DecodeManyRequest(frame []byte) (ManyRequest, error) {
	t, id, err := parseHeader(frame)
	if err != nil {
		return ManyRequest{}, err
	}
	if t != TypeFetchMany {
		return ManyRequest{}, decodeErr(ErrType, fmt.Sprintf("%v where FETCH_MANY was expected", t))
	}
	if len(frame) < ManyRequestHeaderSize || len(frame) > MaxManyRequestSize {
		return ManyRequest{}, decodeErr(ErrLength, fmt.Sprintf("FETCH_MANY of %d bytes, want %d..%d", len(frame), ManyRequestHeaderSize, MaxManyRequestSize))
	}
	k := int(binary.BigEndian.Uint16(frame[32:]))
	if k == 0 || k > MaxManyEntries {
		return ManyRequest{}, decodeErr(ErrCount, fmt.Sprintf("%d entries, want 1..%d", k, MaxManyEntries))
	}
	// Walk the entries once to check the framing before allocating.
	body := frame[ManyRequestHeaderSize:]
	off := 0
	for i := 0; i < k; i++ {
		if len(body)-off < ManyEntryHeaderSize {
			return ManyRequest{}, decodeErr(ErrLength, fmt.Sprintf("entry %d of %d truncated", i, k))
		}
		n := int(body[off+16])
		if len(body)-off-ManyEntryHeaderSize < n {
			return ManyRequest{}, decodeErr(ErrLength, fmt.Sprintf("entry %d topic of %d bytes truncated", i, n))
		}
		from := binary.BigEndian.Uint64(body[off:])
		to := binary.BigEndian.Uint64(body[off+8:])
		topic := body[off+ManyEntryHeaderSize : off+ManyEntryHeaderSize+n]
		if err := checkTopic(string(topic)); err != nil {
			return ManyRequest{}, err
		}
		if from == 0 || to < from {
			return ManyRequest{}, decodeErr(ErrRange, fmt.Sprintf("entry %d: from %d to %d", i, from, to))
		}
		off += ManyEntryHeaderSize + n
	}
	if off != len(body) {
		return ManyRequest{}, decodeErr(ErrLength, fmt.Sprintf("%d trailing bytes after %d entries", len(body)-off, k))
	}
	r := ManyRequest{ID: id, Epoch: binary.BigEndian.Uint64(frame[24:]), Ranges: make([]Range, k)}
	copy(r.Publisher[:], frame[8:24])
	all := string(body) // one copy; topics are substrings of it
	off = 0
	for i := range r.Ranges {
		n := int(body[off+16])
		r.Ranges[i] = Range{
			From:  binary.BigEndian.Uint64(body[off:]),
			To:    binary.BigEndian.Uint64(body[off+8:]),
			Topic: all[off+ManyEntryHeaderSize : off+ManyEntryHeaderSize+n],
		}
		off += ManyEntryHeaderSize + n
	}
	return r, nil
}

// RangeDone is the outcome of one FETCH_MANY entry.
type RangeDone struct {
	Status Status
	// FirstHeld is the oldest sequence the publisher still holds for the
	// entry's topic, 0 if none.
	FirstHeld uint64
	// LastSeq is the last sequence the publisher published on the topic.
	LastSeq uint64
}

// DoneMany is the body of a DONE_MANY response.
type DoneMany struct {
	// Epoch is the publisher's current epoch.
	Epoch uint64
	// Ranges holds one outcome per FETCH_MANY entry, in request order.
	Ranges []RangeDone
}

// AppendDoneMany appends the complete DONE_MANY frame answering request
// id. It does not validate d: more than MaxManyEntries outcomes, an
// unknown status or a first held sequence above the last encode to a frame
// DecodeResponse rejects.
func AppendDoneMany(dst []byte, id uint32, d DoneMany) []byte {
	dst = appendHeader(dst, TypeDoneMany, id)
	dst = binary.BigEndian.AppendUint64(dst, d.Epoch)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(d.Ranges)))
	for _, e := range d.Ranges {
		dst = append(dst, byte(e.Status))
		dst = binary.BigEndian.AppendUint64(dst, e.FirstHeld)
		dst = binary.BigEndian.AppendUint64(dst, e.LastSeq)
	}
	return dst
}

// decodeDoneMany decodes the body of a one-frame DONE_MANY.
func decodeDoneMany(f0 []byte) (DoneMany, error) {
	if len(f0) < DoneManyHeaderSize {
		return DoneMany{}, decodeErr(ErrLength, fmt.Sprintf("DONE_MANY of %d bytes, need at least %d", len(f0), DoneManyHeaderSize))
	}
	k := int(binary.BigEndian.Uint16(f0[16:]))
	if k == 0 || k > MaxManyEntries {
		return DoneMany{}, decodeErr(ErrCount, fmt.Sprintf("%d entries, want 1..%d", k, MaxManyEntries))
	}
	if want := DoneManyHeaderSize + k*DoneManyEntrySize; len(f0) != want {
		return DoneMany{}, decodeErr(ErrLength, fmt.Sprintf("DONE_MANY of %d bytes, %d entries want %d", len(f0), k, want))
	}
	body := f0[DoneManyHeaderSize:]
	for i := 0; i < k; i++ {
		e := body[i*DoneManyEntrySize:]
		st, first, last := Status(e[0]), binary.BigEndian.Uint64(e[1:]), binary.BigEndian.Uint64(e[9:])
		if st > StatusBeyondEnd {
			return DoneMany{}, decodeErr(ErrStatus, fmt.Sprintf("entry %d: %d", i, uint8(st)))
		}
		if first != 0 && first > last {
			return DoneMany{}, decodeErr(ErrRange, fmt.Sprintf("entry %d: first held %d above last %d", i, first, last))
		}
	}
	d := DoneMany{Epoch: binary.BigEndian.Uint64(f0[8:]), Ranges: make([]RangeDone, k)}
	for i := range d.Ranges {
		e := body[i*DoneManyEntrySize:]
		d.Ranges[i] = RangeDone{Status: Status(e[0]), FirstHeld: binary.BigEndian.Uint64(e[1:]), LastSeq: binary.BigEndian.Uint64(e[9:])}
	}
	return d, nil
}
