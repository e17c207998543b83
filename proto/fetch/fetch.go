package fetch

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/syncmq/syncmq/envelope"
)

// The recovery channel's wire format is specified byte by byte in the
// package documentation (doc.go).

// Version is the recovery channel protocol version this package speaks.
const Version = 1

// Frame sizes and limits of the recovery channel.
const (
	// RequestHeaderSize is the size of a FETCH frame without its topic.
	RequestHeaderSize = 49
	// ResponseHeaderSize is the size of the common response header.
	ResponseHeaderSize = 8
	// DoneSize is the exact size of a DONE frame.
	DoneSize = ResponseHeaderSize + 1 + 8 + 8 + 8
	// MaxTopic is the longest topic a FETCH can name.
	MaxTopic = 255
	// MaxErrorText is the longest message an ERROR can carry, in bytes.
	MaxErrorText = 1024
)

var protoMagic = [2]byte{'S', 'R'}

// Type is the message type byte at offset 3 of every recovery frame 0.
type Type uint8

// Message types.
const (
	// TypeFetch asks for a range of a topic's history.
	TypeFetch Type = 1
	// TypeFetchMany asks for several ranges of one publisher incarnation's
	// history. A server that predates it answers ERROR CodeMalformed.
	TypeFetchMany Type = 2
	// TypeReplay carries one replayed envelope.
	TypeReplay Type = 10
	// TypeDone ends a successful FETCH.
	TypeDone Type = 11
	// TypeError ends a failed FETCH or FETCH_MANY.
	TypeError Type = 12
	// TypeDoneMany ends a successful FETCH_MANY.
	TypeDoneMany Type = 13
)

// String returns FETCH, FETCH_MANY, REPLAY, DONE, ERROR, DONE_MANY or Type(n).
func (t Type) String() string {
	switch t {
	case TypeFetch:
		return "FETCH"
	case TypeFetchMany:
		return "FETCH_MANY"
	case TypeDoneMany:
		return "DONE_MANY"
	case TypeReplay:
		return "REPLAY"
	case TypeDone:
		return "DONE"
	case TypeError:
		return "ERROR"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Status is the outcome a DONE, or one entry of a DONE_MANY, reports.
type Status uint8

// DONE statuses.
const (
	// StatusComplete means every sequence of the range was replayed.
	StatusComplete Status = 0
	// StatusPartial means the start of the range is no longer held; the
	// rest, from Done.FirstHeld, was replayed.
	StatusPartial Status = 1
	// StatusUnknownEpoch means the publisher runs a different epoch than the
	// request named, so the range cannot be served.
	StatusUnknownEpoch Status = 2
	// StatusUnknownTopic means the publisher holds no history for the topic.
	StatusUnknownTopic Status = 3
	// StatusBeyondEnd means the whole range lies above the last sequence
	// published on the topic: nothing of it exists yet, nothing was
	// replayed. Only DONE_MANY carries it; a DONE cannot (see the package
	// documentation for what a FETCH gets instead).
	StatusBeyondEnd Status = 4
)

// String returns complete, partial, unknown-epoch, unknown-topic,
// beyond-end or Status(n).
func (s Status) String() string {
	switch s {
	case StatusComplete:
		return "complete"
	case StatusPartial:
		return "partial"
	case StatusUnknownEpoch:
		return "unknown-epoch"
	case StatusUnknownTopic:
		return "unknown-topic"
	case StatusBeyondEnd:
		return "beyond-end"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// ErrorCode is the code an ERROR response carries.
type ErrorCode uint16

// ERROR codes.
const (
	// CodeMalformed means the server could not decode the request.
	CodeMalformed ErrorCode = 1
	// CodeRateLimited means the subscriber sent requests too fast; retry later.
	CodeRateLimited ErrorCode = 2
	// CodeRangeTooLarge means the range exceeds the server's limit; ask for less.
	CodeRangeTooLarge ErrorCode = 3
	// CodeBusy means the server is overloaded; retry later.
	CodeBusy ErrorCode = 4
	// CodeVersion means the request's version byte is one the server
	// does not speak; the ERROR's own version byte is the version it
	// speaks. Added in protocol 1.1; a 1.0 client takes it, like any
	// unknown code, to mean "failed".
	CodeVersion ErrorCode = 5
	// CodeForbidden means the requester's certificate identity is not on
	// the publisher's allow-list (tls:// endpoints only); asking again
	// does not help. Added in protocol 1.1.
	CodeForbidden ErrorCode = 6
)

// String returns malformed, rate-limited, range-too-large, busy, version,
// forbidden or code(n).
func (c ErrorCode) String() string {
	switch c {
	case CodeMalformed:
		return "malformed"
	case CodeRateLimited:
		return "rate-limited"
	case CodeRangeTooLarge:
		return "range-too-large"
	case CodeBusy:
		return "busy"
	case CodeVersion:
		return "version"
	case CodeForbidden:
		return "forbidden"
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Request is a decoded FETCH: send me the records From..To (inclusive) of
// Topic that Publisher published in Epoch.
type Request struct {
	// ID is chosen by the client and echoed in every response to this request.
	ID        uint32
	Publisher envelope.ID
	Epoch     uint64
	From, To  uint64
	Topic     string
}

// Count is the number of sequences the request asks for, To-From+1 (0 if
// the range is empty or invalid; saturating at the largest uint64).
func (r Request) Count() uint64 { return rangeCount(r.From, r.To) }

func rangeCount(from, to uint64) uint64 {
	if from == 0 || to < from {
		return 0
	}
	if from == 1 && to == ^uint64(0) {
		return to
	}
	return to - from + 1
}

// Validate reports whether r can be encoded and would be accepted by
// DecodeRequest. The error wraps ErrMalformed and ErrTopic or ErrRange.
func (r Request) Validate() error {
	if err := checkTopic(r.Topic); err != nil {
		return err
	}
	if r.From == 0 || r.To < r.From {
		return decodeErr(ErrRange, fmt.Sprintf("from %d to %d", r.From, r.To))
	}
	return nil
}

func checkTopic(t string) error {
	switch {
	case len(t) == 0:
		return decodeErr(ErrTopic, "empty")
	case len(t) > MaxTopic:
		return decodeErr(ErrTopic, fmt.Sprintf("%d bytes exceeds %d", len(t), MaxTopic))
	case t[0] == 0:
		return decodeErr(ErrTopic, "starts with the reserved zero byte")
	}
	return nil
}

// EncodeRequest appends the FETCH frame for r to dst and returns the
// extended slice. It does not validate r: call r.Validate first. An invalid
// request still encodes without panicking, to a frame DecodeRequest rejects.
func EncodeRequest(dst []byte, r Request) []byte {
	dst = appendHeader(dst, TypeFetch, r.ID)
	dst = append(dst, r.Publisher[:]...)
	dst = binary.BigEndian.AppendUint64(dst, r.Epoch)
	dst = binary.BigEndian.AppendUint64(dst, r.From)
	dst = binary.BigEndian.AppendUint64(dst, r.To)
	dst = append(dst, byte(len(r.Topic)))
	return append(dst, r.Topic...)
}

func appendHeader(dst []byte, t Type, id uint32) []byte {
	dst = append(dst, protoMagic[0], protoMagic[1], Version, byte(t))
	return binary.BigEndian.AppendUint32(dst, id)
}

// parseHeader checks magic and version of a frame 0 and returns its type and id.
func parseHeader(b []byte) (Type, uint32, error) {
	if len(b) < ResponseHeaderSize {
		return 0, 0, decodeErr(ErrLength, fmt.Sprintf("%d bytes, need at least %d", len(b), ResponseHeaderSize))
	}
	if b[0] != protoMagic[0] || b[1] != protoMagic[1] {
		return 0, 0, decodeErr(ErrMagic, fmt.Sprintf("% x", b[:2]))
	}
	if b[2] != Version {
		return 0, 0, decodeErr(ErrVersion, fmt.Sprintf("%d, want %d", b[2], Version))
	}
	return Type(b[3]), binary.BigEndian.Uint32(b[4:]), nil
}

// RequestID returns the request id of a frame that starts with the magic
// and is at least 8 bytes long, whatever its version byte says, so a
// server can echo it in an ERROR for a request it could not decode (or
// whose version it does not speak). ok is false when even that is
// missing.
func RequestID(frame []byte) (id uint32, ok bool) {
	if len(frame) < ResponseHeaderSize || frame[0] != protoMagic[0] || frame[1] != protoMagic[1] {
		return 0, false
	}
	return binary.BigEndian.Uint32(frame[4:]), true
}

// DecodeRequest decodes one FETCH frame. It copies the topic, so the frame
// may be reused afterwards. Every error is a *DecodeError wrapping
// ErrMalformed. DecodeRequest never panics.
func DecodeRequest(frame []byte) (Request, error) {
	var r Request
	t, id, err := parseHeader(frame)
	if err != nil {
		return r, err
	}
	if t != TypeFetch {
		return r, decodeErr(ErrType, fmt.Sprintf("%v in a request", t))
	}
	if len(frame) < RequestHeaderSize {
		return r, decodeErr(ErrLength, fmt.Sprintf("FETCH of %d bytes, need at least %d", len(frame), RequestHeaderSize))
	}
	n := int(frame[48])
	if len(frame) != RequestHeaderSize+n {
		return r, decodeErr(ErrLength, fmt.Sprintf("FETCH of %d bytes, topic length %d wants %d", len(frame), n, RequestHeaderSize+n))
	}
	r.ID = id
	copy(r.Publisher[:], frame[8:24])
	r.Epoch = binary.BigEndian.Uint64(frame[24:])
	r.From = binary.BigEndian.Uint64(frame[32:])
	r.To = binary.BigEndian.Uint64(frame[40:])
	topic := frame[RequestHeaderSize:]
	if err := checkTopic(string(topic)); err != nil {
		return Request{}, err
	}
	if r.From == 0 || r.To < r.From {
		return Request{}, decodeErr(ErrRange, fmt.Sprintf("from %d to %d", r.From, r.To))
	}
	r.Topic = string(topic)
	return r, nil
}

// Done is the body of a DONE response.
type Done struct {
	Status Status
	// FirstHeld is the oldest sequence the publisher still holds for the topic, 0 if none.
	FirstHeld uint64
	// LastSeq is the last sequence the publisher published on the topic.
	LastSeq uint64
	// Epoch is the publisher's current epoch.
	Epoch uint64
}

// ErrorReply is the body of an ERROR response.
type ErrorReply struct {
	Code ErrorCode
	// Text is a human-readable explanation, at most MaxErrorText bytes of UTF-8.
	Text string
}

// Response is a decoded response. Type says which of Message, Done, Many
// and Error is set.
type Response struct {
	Type Type
	// ID is the request id the response answers.
	ID uint32
	// Message is the replayed envelope of a REPLAY. It aliases the frames
	// it was decoded from. The caller checks that its publisher, epoch and
	// topic are the ones it asked for.
	Message envelope.Message
	// Done is the body of a DONE.
	Done Done
	// Many is the body of a DONE_MANY.
	Many DoneMany
	// Error is the body of an ERROR.
	Error ErrorReply
}

// AppendResponseHeader appends the 8-byte response frame 0 header for a
// response of type t to request id. For a REPLAY that header is the whole
// frame 0; send it followed by the three envelope.Frames of a message
// built with FlagReplay set.
func AppendResponseHeader(dst []byte, t Type, id uint32) []byte {
	return appendHeader(dst, t, id)
}

// AppendDone appends the complete DONE frame answering request id. A DONE
// carries statuses 0..3 only; StatusBeyondEnd encodes to a frame
// DecodeResponse rejects.
func AppendDone(dst []byte, id uint32, d Done) []byte {
	dst = appendHeader(dst, TypeDone, id)
	dst = append(dst, byte(d.Status))
	dst = binary.BigEndian.AppendUint64(dst, d.FirstHeld)
	dst = binary.BigEndian.AppendUint64(dst, d.LastSeq)
	return binary.BigEndian.AppendUint64(dst, d.Epoch)
}

// AppendError appends the complete ERROR frame answering request id. Text
// that is not valid UTF-8 has its bad bytes replaced by U+FFFD, and text
// longer than MaxErrorText bytes is cut at a character boundary, so the
// frame always decodes.
func AppendError(dst []byte, id uint32, e ErrorReply) []byte {
	dst = appendHeader(dst, TypeError, id)
	dst = binary.BigEndian.AppendUint16(dst, uint16(e.Code))
	return append(dst, clipText(e.Text)...)
}

func clipText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= MaxErrorText {
		return s
	}
	cut := MaxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// DecodeResponse decodes the frames of one response with the envelope
// package's default limits. See DecodeResponseLimits.
func DecodeResponse(frames [][]byte) (Response, error) {
	return DecodeResponseLimits(frames, envelope.Limits{})
}

// DecodeResponseLimits decodes the frames of one response (an answer to
// FETCH or FETCH_MANY). A REPLAY's
// envelope is checked with envelope.Decode under lim and must be a DATA
// message with FlagReplay set; the returned Message aliases frames. Every
// error is a *DecodeError wrapping ErrMalformed. It never panics.
func DecodeResponseLimits(frames [][]byte, lim envelope.Limits) (Response, error) {
	var r Response
	if len(frames) == 0 {
		return r, decodeErr(ErrFrameCount, "no frames")
	}
	f0 := frames[0]
	t, id, err := parseHeader(f0)
	if err != nil {
		return r, err
	}
	switch t {
	case TypeReplay:
		if len(frames) != 4 {
			return r, decodeErr(ErrFrameCount, fmt.Sprintf("REPLAY with %d frames, want 4", len(frames)))
		}
		if len(f0) != ResponseHeaderSize {
			return r, decodeErr(ErrLength, fmt.Sprintf("REPLAY header of %d bytes, want %d", len(f0), ResponseHeaderSize))
		}
		m, err := envelope.Decode(frames[1:], lim)
		if err != nil {
			return r, &DecodeError{Kind: ErrEnvelope, Detail: "REPLAY", Cause: err}
		}
		if m.Kind != envelope.KindData || m.Flags&envelope.FlagReplay == 0 {
			return r, decodeErr(ErrNotReplay, fmt.Sprintf("%v with flags %#04x", m.Kind, uint16(m.Flags)))
		}
		r.Message = m
	case TypeDone:
		if len(frames) != 1 {
			return r, decodeErr(ErrFrameCount, fmt.Sprintf("DONE with %d frames, want 1", len(frames)))
		}
		if len(f0) != DoneSize {
			return r, decodeErr(ErrLength, fmt.Sprintf("DONE of %d bytes, want %d", len(f0), DoneSize))
		}
		d := Done{
			Status:    Status(f0[8]),
			FirstHeld: binary.BigEndian.Uint64(f0[9:]),
			LastSeq:   binary.BigEndian.Uint64(f0[17:]),
			Epoch:     binary.BigEndian.Uint64(f0[25:]),
		}
		if d.Status > StatusUnknownTopic {
			return r, decodeErr(ErrStatus, fmt.Sprintf("%d", uint8(d.Status)))
		}
		if d.FirstHeld != 0 && d.FirstHeld > d.LastSeq {
			return r, decodeErr(ErrRange, fmt.Sprintf("first held %d above last %d", d.FirstHeld, d.LastSeq))
		}
		r.Done = d
	case TypeDoneMany:
		if len(frames) != 1 {
			return r, decodeErr(ErrFrameCount, fmt.Sprintf("DONE_MANY with %d frames, want 1", len(frames)))
		}
		d, err := decodeDoneMany(f0)
		if err != nil {
			return r, err
		}
		r.Many = d
	case TypeError:
		if len(frames) != 1 {
			return r, decodeErr(ErrFrameCount, fmt.Sprintf("ERROR with %d frames, want 1", len(frames)))
		}
		if len(f0) < ResponseHeaderSize+2 || len(f0) > ResponseHeaderSize+2+MaxErrorText {
			return r, decodeErr(ErrLength, fmt.Sprintf("ERROR of %d bytes, want %d..%d", len(f0), ResponseHeaderSize+2, ResponseHeaderSize+2+MaxErrorText))
		}
		text := f0[ResponseHeaderSize+2:]
		if !utf8.Valid(text) {
			return r, decodeErr(ErrText, "not UTF-8")
		}
		r.Error = ErrorReply{Code: ErrorCode(binary.BigEndian.Uint16(f0[ResponseHeaderSize:])), Text: string(text)}
	default:
		return r, decodeErr(ErrType, fmt.Sprintf("%v in a response", t))
	}
	r.Type, r.ID = t, id
	return r, nil
}
