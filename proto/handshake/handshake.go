// Package handshake is the sync handshake's wire format: the READY and BYE
// requests a subscriber sends to a publisher's sync endpoint and the ACK,
// BYE and ERROR replies, each one JSON object in one ZeroMQ frame
// (docs/protocol.md, section 2). It is a pure codec.
package handshake

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/syncmq/syncmq/envelope"
)

// Version is the version of the sync handshake messages this package
// writes. Protocol 1.1 is still handshake version 1: its additions are
// optional fields a 1.0 peer ignores.
const Version = 1

// Versions lists the handshake versions this package reads, in the
// "versions" field of a version error.
var Versions = []int{Version}

// Handshake limits. A request outside them gets an error reply.
const (
	// MaxHandshakeSize bounds a READY or BYE request frame in bytes.
	MaxHandshakeSize = 64 << 10
	// MaxReplySize bounds a reply frame in bytes. An ACK lists up to
	// MaxAckTopics topics twice (topics and resume), each entry at most
	// 552 bytes (a 255-byte topic whose every byte needs a JSON escape
	// of two bytes, and a 20-digit sequence), which fits.
	MaxReplySize = 64 << 20
	// MaxAckTopics bounds the entries of an ACK's topic table (and of
	// its resume table): the most topics a publisher may have.
	MaxAckTopics = 60_000
	// MaxSubscriberID bounds the subscriber id in bytes.
	MaxSubscriberID = 128
	// MaxTopics bounds the prefixes a READY may list.
	MaxTopics = 1024
	// MaxForms bounds the message forms a READY may list, and MaxFormName
	// the length of each.
	MaxForms    = 16
	MaxFormName = 32
)

// FormMulti is the MULTI message (protocol 1.1): records of several
// topics in one data message. A subscriber lists it in its READY's
// "forms" when it decodes MULTI; the ACK lists it when the publisher
// sends MULTI on the subscriber's data connection (docs/protocol.md).
const FormMulti = "multi"

// Handshake message types, the "type" field of every message.
const (
	TypeReady = "ready"
	TypeAck   = "ack"
	TypeError = "error"
	// TypeBye is sent by a subscriber that has everything up to END, so
	// the publisher can close without waiting out its recovery linger.
	// Same fields as READY; the nonce is the one its last accepted READY
	// quoted. The reply is a bare {"v":1,"type":"bye"}.
	TypeBye = "bye"
)

// Error reply codes.
const (
	CodeMalformed      = "malformed"       // not a valid READY or BYE request (or over MaxHandshakeSize)
	CodeVersion        = "version"         // unsupported "v"; the reply lists Versions
	CodeBadNonce       = "bad_nonce"       // nonce not of a live data connection, or a BYE not quoting the last READY's
	CodeWrongPublisher = "wrong_publisher" // publisher id or epoch is not this publisher's, or it has ended
	CodeFull           = "full"            // too many subscribers
	// CodeForbidden: on a TLS endpoint, the subscriber id is not the
	// identity of the requester's certificate (or of the data connection
	// whose nonce it quotes), or the publisher's allow-list does not name it.
	CodeForbidden = "forbidden"
)

// Ready is the READY request a subscriber sends to the publisher's sync
// endpoint (REQ to REP) once it received a HELLO on its SUB socket. The
// nonce from that HELLO proves the subscriber's data path works.
type Ready struct {
	V          int      `json:"v"`
	Type       string   `json:"type"`
	Subscriber string   `json:"subscriber"`
	Publisher  string   `json:"publisher"` // 32 hex digits, either case
	Epoch      uint64   `json:"epoch"`
	Nonce      string   `json:"nonce"` // 32 hex digits, either case
	Topics     []string `json:"topics,omitempty"`
	// Forms lists the data message forms beyond protocol 1.0 that the
	// data connection the nonce proves accepts (FormMulti); unknown names
	// are ignored, so a subscriber may list forms a publisher lacks.
	Forms []string `json:"forms,omitempty"`
	// Lost (BYE only, 1.1) is how many records of the epoch the
	// subscriber was told it lost (EventLoss); 0 or absent: none. The
	// publisher ends its job successfully only when every subscriber that
	// joined said BYE with nothing lost.
	Lost uint64 `json:"lost,omitempty"`
	// From (READY only, 1.2) asks the publisher to feed the data
	// connection the nonce proves, before the live stream, every record
	// it still holds of the subscriber's topics from this sequence on
	// (catch-up): a late joiner that wants the past gets it without FETCH
	// round trips. 0 or absent: nothing from before the join.
	From uint64 `json:"from,omitempty"`
}

// Accepts reports whether r lists form.
func (r Ready) Accepts(form string) bool {
	for _, f := range r.Forms {
		if f == form {
			return true
		}
	}
	return false
}

// readyWire is how a request is read: its "v" is read first, raw, so a
// missing one (malformed) is told from one that is not this version
// (version), whatever its JSON type. V shadows Ready.V.
type readyWire struct {
	Ready
	V json.RawMessage `json:"v"`
}

// TopicSeq is one entry of the ACK's topic table: the last sequence
// published on Topic when the subscriber joined.
type TopicSeq struct {
	Topic string `json:"topic"`
	Seq   uint64 `json:"seq"`
}

// Ack is the publisher's reply to an accepted READY.
type Ack struct {
	V         int        `json:"v"`
	Type      string     `json:"type"`
	Publisher string     `json:"publisher"`
	Epoch     uint64     `json:"epoch"`
	Joined    int        `json:"joined"` // distinct subscribers counted so far
	Expect    int        `json:"expect"` // the quorum the publisher waits for
	Quorum    bool       `json:"quorum"` // whether publishing has started
	Topics    []TopicSeq `json:"topics"` // where every topic stood at the ACK
	Recovery  string     `json:"recovery,omitempty"`
	// RepairWindowMS is how long, in milliseconds, the recovery endpoint
	// keeps serving repairs after END (it may close earlier once every
	// subscriber said BYE). Absent from 1.0 publishers.
	RepairWindowMS int64 `json:"repair_window_ms,omitempty"`
	// Resume is set when this subscriber id joined this epoch before on
	// another data connection (it reconnected or restarted): where every
	// topic stood at its first join. A subscriber that lost its place
	// starts each topic there, repairing or reporting what it missed.
	Resume []TopicSeq `json:"resume,omitempty"`
	// Forms lists the forms beyond 1.0, among those the READY accepted,
	// that the publisher sends on the subscriber's data connection from
	// this ACK on.
	Forms []string `json:"forms,omitempty"`
	// From (1.2) echoes the READY's from when the publisher feeds the
	// data connection from there: records before the live stream, flagged
	// REPLAY, in order within each topic. Absent: it does not, and the
	// subscriber repairs what it wants over the recovery channel.
	From uint64 `json:"from,omitempty"`
}

// Sends reports whether a lists form.
func (a *Ack) Sends(form string) bool {
	for _, f := range a.Forms {
		if f == form {
			return true
		}
	}
	return false
}

// ByeReply is the publisher's reply to an accepted BYE.
func ByeReply() any {
	return struct {
		V    int    `json:"v"`
		Type string `json:"type"`
	}{Version, TypeBye}
}

// ErrorReply is the reply to a request the publisher refused.
type ErrorReply struct {
	V       int    `json:"v"`
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Versions lists the handshake versions the publisher speaks; set
	// with CodeVersion only.
	Versions []int `json:"versions,omitempty"`
}

// NewErrorReply returns the error reply for code, listing Versions when
// the code is CodeVersion.
func NewErrorReply(code, msg string) ErrorReply {
	r := ErrorReply{V: Version, Type: TypeError, Code: code, Message: msg}
	if code == CodeVersion {
		r.Versions = Versions
	}
	return r
}

func (e *ErrorReply) Error() string {
	return fmt.Sprintf("coord: sync refused (%s): %s", e.Code, e.Message)
}

// DecodeReady parses and validates a READY (or BYE) request frame. It never panics;
// errors wrap ErrFailed and carry the reply code to send.
//
// A request without "v" (or with "v": null) is malformed; one whose "v"
// is anything but the integer Version (another integer, a fraction such
// as 9.9, a string) gets CodeVersion, checked before any other field, so
// a client of another version learns which to fall back to.
func DecodeReady(b []byte) (Ready, error) {
	if len(b) > MaxHandshakeSize {
		return Ready{}, handshakeErr(CodeMalformed, "request is %d bytes, limit %d", len(b), MaxHandshakeSize)
	}
	var head struct {
		V json.RawMessage `json:"v"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&head); err != nil {
		return Ready{}, handshakeErr(CodeMalformed, "not a JSON object: %v", err)
	}
	if dec.More() {
		return Ready{}, handshakeErr(CodeMalformed, "trailing data after the JSON object")
	}
	v := string(head.V)
	if v == "" || v == "null" {
		return Ready{}, handshakeErr(CodeMalformed, `no "v": every request names its version`)
	}
	if v != strconv.Itoa(Version) {
		return Ready{}, handshakeErr(CodeVersion, "version %.40s, this publisher speaks %v", v, Versions)
	}
	var w readyWire
	if err := json.Unmarshal(b, &w); err != nil {
		return Ready{}, handshakeErr(CodeMalformed, "not a valid request: %v", err)
	}
	r := w.Ready
	r.V = Version
	if r.Type != TypeReady && r.Type != TypeBye {
		return r, handshakeErr(CodeMalformed, "type %q, want %q or %q", r.Type, TypeReady, TypeBye)
	}
	if err := CheckSubscriberID(r.Subscriber); err != nil {
		return r, err
	}
	if _, err := envelope.ParseID(r.Publisher); err != nil {
		return r, handshakeErr(CodeMalformed, "publisher: %v", err)
	}
	if n, err := hex.DecodeString(r.Nonce); err != nil || len(n) != envelope.NonceSize {
		return r, handshakeErr(CodeMalformed, "nonce must be %d hex digits", 2*envelope.NonceSize)
	}
	if len(r.Topics) > MaxTopics {
		return r, handshakeErr(CodeMalformed, "%d topics, limit %d", len(r.Topics), MaxTopics)
	}
	for _, t := range r.Topics {
		if len(t) > envelope.DefaultLimits.MaxTopic {
			return r, handshakeErr(CodeMalformed, "topic prefix of %d bytes, limit %d", len(t), envelope.DefaultLimits.MaxTopic)
		}
	}
	if len(r.Forms) > MaxForms {
		return r, handshakeErr(CodeMalformed, "%d forms, limit %d", len(r.Forms), MaxForms)
	}
	for _, f := range r.Forms {
		if len(f) > MaxFormName {
			return r, handshakeErr(CodeMalformed, "form name of %d bytes, limit %d", len(f), MaxFormName)
		}
	}
	return r, nil
}

// CheckSubscriberID reports whether id is a valid subscriber id.
func CheckSubscriberID(id string) error {
	if id == "" || len(id) > MaxSubscriberID || !utf8.ValidString(id) {
		return handshakeErr(CodeMalformed, "subscriber id must be 1..%d bytes of UTF-8", MaxSubscriberID)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return handshakeErr(CodeMalformed, "subscriber id contains control characters")
		}
	}
	return nil
}

// CheckTopic reports whether a data topic can be named in a handshake
// message as it is: UTF-8 without control characters, so its JSON form is
// exact and at most twice its length. A publisher publishes no other
// topics (protocol 1.1).
func CheckTopic(topic string) error {
	if !utf8.ValidString(topic) {
		return handshakeErr(CodeMalformed, "topic %q is not UTF-8", topic)
	}
	for _, r := range topic {
		if r < 0x20 || r == 0x7f {
			return handshakeErr(CodeMalformed, "topic %q contains control characters", topic)
		}
	}
	return nil
}

// DecodeReply parses the publisher's reply: an *Ack for READY, nil and
// nil for BYE, or an *ErrorReply returned as the error. An error reply is
// read whatever its "v", so a version error from a publisher of another
// version still says which versions it speaks.
func DecodeReply(b []byte) (*Ack, error) {
	if len(b) > MaxReplySize {
		return nil, handshakeErr(CodeMalformed, "reply is %d bytes, limit %d", len(b), MaxReplySize)
	}
	var head struct {
		V    int    `json:"v"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, handshakeErr(CodeMalformed, "reply is not a JSON object: %v", err)
	}
	if head.V != Version && head.Type != TypeError {
		return nil, handshakeErr(CodeVersion, "reply version %d, want %d", head.V, Version)
	}
	switch head.Type {
	case TypeAck:
		var a Ack
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, handshakeErr(CodeMalformed, "ack: %v", err)
		}
		if _, err := envelope.ParseID(a.Publisher); err != nil {
			return nil, handshakeErr(CodeMalformed, "ack publisher: %v", err)
		}
		if len(a.Topics) > MaxAckTopics || len(a.Resume) > MaxAckTopics {
			return nil, handshakeErr(CodeMalformed, "ack has %d topics and %d resume entries, limit %d", len(a.Topics), len(a.Resume), MaxAckTopics)
		}
		return &a, nil
	case TypeBye:
		return nil, nil
	case TypeError:
		var e ErrorReply
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, handshakeErr(CodeMalformed, "error reply: %v", err)
		}
		return nil, &e
	}
	return nil, handshakeErr(CodeMalformed, "reply type %q", head.Type)
}

// ErrFailed is matched by every *Error.
var ErrFailed = errors.New("handshake: failed")

// Error is a refused or unreadable handshake message.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return "handshake: " + e.Code + ": " + e.Msg }

// Unwrap makes every Error match ErrFailed.
func (e *Error) Unwrap() error { return ErrFailed }

func handshakeErr(code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Encode marshals one of this package's message types. It does not
// escape <, > and & (JSON does not need it), so a topic's JSON form is at
// most twice its length and an ACK stays within MaxReplySize.
func Encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("handshake: marshal %T: %v", v, err)) // only our own fixed types get here
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
