package envelope

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Protocol constants. docs/protocol.md is the normative description.
const (
	// Version is the envelope protocol version this package speaks.
	Version = 1
	// HeaderSize is the exact length in bytes of frame 1.
	HeaderSize = 56
	// NonceSize is the length of the nonce a HELLO probe carries.
	NonceSize = 16
	// ControlTopic is the topic of HELLO, HEARTBEAT and END messages. Its
	// leading zero byte cannot start a data topic, so no application prefix
	// subscription matches it by accident.
	ControlTopic = "\x00syncmq"
)

var magic = [2]byte{'S', 'Q'}

// Kind says what a message is for.
type Kind uint8

// Message kinds.
const (
	// KindData carries application payload: one record, or Count records when FlagBatch is set.
	KindData Kind = 1
	// KindHello is the probe a publisher sends until quorum; its payload is a nonce.
	KindHello Kind = 2
	// KindHeartbeat tells subscribers the last sequence of each topic published recently.
	KindHeartbeat Kind = 3
	// KindEnd says the publisher has finished; its payload is the final topic table.
	KindEnd Kind = 4
	// KindAbort says the publisher gives the epoch up unfinished (its
	// quorum failed); its payload is the reason, UTF-8 text of at most
	// MaxAbortReason bytes. END follows. Added in protocol 1.1; a 1.0
	// receiver drops it as an unknown kind.
	KindAbort Kind = 5
	// KindMulti carries Count records of one or more topics in publish
	// order, each with its own topic and sequence (see multi.go). It has
	// four frames, not three. Added in protocol 1.1; a publisher sends it
	// only on connections whose READY said they accept it.
	KindMulti Kind = 6
	// KindLoss says a range of one topic's sequences will never be
	// published, and why: a relay forwards a loss its upstream reported
	// (see loss.go). Added in protocol 1.2; a receiver that does not know
	// it drops it as an unknown kind and sees a gap instead.
	KindLoss Kind = 7
)

func (k Kind) String() string {
	switch k {
	case KindData:
		return "DATA"
	case KindHello:
		return "HELLO"
	case KindHeartbeat:
		return "HEARTBEAT"
	case KindEnd:
		return "END"
	case KindAbort:
		return "ABORT"
	case KindMulti:
		return "MULTI"
	case KindLoss:
		return "LOSS"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Flags modify a DATA message.
type Flags uint16

const (
	// FlagBatch says the payload holds Count records, each a 4-byte
	// big-endian length followed by that many bytes.
	FlagBatch Flags = 1 << 0
	// FlagReplay marks a message resent from the publisher's history over
	// the recovery channel, not published live.
	FlagReplay Flags = 1 << 1

	knownFlags = FlagBatch | FlagReplay
)

// ID identifies a publisher. It is random and stays the same across restarts
// only if the operator configures it; Epoch tells restarts apart.
type ID [16]byte

// NewID returns a random ID.
func NewID() ID {
	var id ID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails on supported platforms.
	return id
}

// String returns the ID as 32 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for logs.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// ParseID parses the 32-hex-digit form String produces.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("envelope: publisher id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("envelope: publisher id %q: %w", s, err)
	}
	return id, nil
}

// Header is frame 1 of every message. Byte layout (big-endian):
//
//	 0  2  magic "SQ"
//	 2  1  version (1)
//	 3  1  kind
//	 4  2  flags
//	 6  2  count: records in the payload (1 unless FlagBatch)
//	 8 16  publisher id
//	24  8  epoch: publisher incarnation, changes on every restart
//	32  8  sequence of the first record (per topic and epoch, from 1); 0 on MULTI
//	40  8  publish time, Unix nanoseconds
//	48  4  payload length in bytes (MULTI: frames 2 and 3 together)
//	52  4  CRC-32C (Castagnoli) of the payload frame (MULTI: of frame 2, then frame 3)
type Header struct {
	Kind      Kind
	Flags     Flags
	Count     uint16
	Publisher ID
	Epoch     uint64
	Seq       uint64
	Time      int64
	Len       uint32
	CRC       uint32
}

// LastSeq returns the sequence number of the last record of a DATA message.
func (h *Header) LastSeq() uint64 { return h.Seq + uint64(h.Count) - 1 }

// AppendHeader appends the HeaderSize-byte encoding of h to dst.
func AppendHeader(dst []byte, h *Header) []byte {
	var b [HeaderSize]byte
	putHeader(b[:], h)
	return append(dst, b[:]...)
}

func putHeader(b []byte, h *Header) {
	_ = b[HeaderSize-1]
	b[0], b[1] = magic[0], magic[1]
	b[2] = Version
	b[3] = byte(h.Kind)
	binary.BigEndian.PutUint16(b[4:], uint16(h.Flags))
	binary.BigEndian.PutUint16(b[6:], h.Count)
	copy(b[8:24], h.Publisher[:])
	binary.BigEndian.PutUint64(b[24:], h.Epoch)
	binary.BigEndian.PutUint64(b[32:], h.Seq)
	binary.BigEndian.PutUint64(b[40:], uint64(h.Time))
	binary.BigEndian.PutUint32(b[48:], h.Len)
	binary.BigEndian.PutUint32(b[52:], h.CRC)
}

// ParseHeader decodes and checks frame 1 on its own: size, magic, version,
// kind and flags. Decode does the checks that need the other frames.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) != HeaderSize {
		return h, fmt.Errorf("%w: %d bytes, want %d", ErrHeaderSize, len(b), HeaderSize)
	}
	if b[0] != magic[0] || b[1] != magic[1] {
		return h, fmt.Errorf("%w: % x", ErrMagic, b[:2])
	}
	if b[2] != Version {
		return h, fmt.Errorf("%w: %d, want %d", ErrVersion, b[2], Version)
	}
	h.Kind = Kind(b[3])
	h.Flags = Flags(binary.BigEndian.Uint16(b[4:]))
	h.Count = binary.BigEndian.Uint16(b[6:])
	copy(h.Publisher[:], b[8:24])
	h.Epoch = binary.BigEndian.Uint64(b[24:])
	h.Seq = binary.BigEndian.Uint64(b[32:])
	h.Time = int64(binary.BigEndian.Uint64(b[40:]))
	h.Len = binary.BigEndian.Uint32(b[48:])
	h.CRC = binary.BigEndian.Uint32(b[52:])

	switch h.Kind {
	case KindData:
		if h.Flags&^knownFlags != 0 {
			return h, fmt.Errorf("%w: %#04x on %v", ErrFlags, uint16(h.Flags), h.Kind)
		}
		if h.Count == 0 || (h.Count > 1) != (h.Flags&FlagBatch != 0) {
			return h, fmt.Errorf("%w: count %d with flags %#04x", ErrRecords, h.Count, uint16(h.Flags))
		}
		if h.Seq == 0 || h.Seq+uint64(h.Count)-1 < h.Seq {
			return h, fmt.Errorf("%w: %d+%d", ErrSequence, h.Seq, h.Count)
		}
	case KindMulti:
		if h.Flags != 0 {
			return h, fmt.Errorf("%w: %#04x on %v", ErrFlags, uint16(h.Flags), h.Kind)
		}
		if h.Count == 0 {
			return h, fmt.Errorf("%w: count 0 on %v", ErrRecords, h.Kind)
		}
		if h.Seq != 0 {
			return h, fmt.Errorf("%w: %d on %v, want 0", ErrSequence, h.Seq, h.Kind)
		}
	case KindHello, KindHeartbeat, KindEnd, KindAbort, KindLoss:
		if h.Flags != 0 {
			return h, fmt.Errorf("%w: %#04x on %v", ErrFlags, uint16(h.Flags), h.Kind)
		}
		if h.Count != 0 {
			return h, fmt.Errorf("%w: count %d on %v, want 0", ErrRecords, h.Count, h.Kind)
		}
		if h.Seq != 0 {
			return h, fmt.Errorf("%w: %d on %v, want 0", ErrSequence, h.Seq, h.Kind)
		}
	default:
		return h, fmt.Errorf("%w: %d", ErrKind, uint8(h.Kind))
	}
	return h, nil
}

// SetFlags sets f in an encoded header, in place. The checksum covers only
// the payload, so the header stays valid: a publisher marks a retained
// batch FlagReplay this way without re-encoding it.
func SetFlags(header []byte, f Flags) {
	binary.BigEndian.PutUint16(header[4:], binary.BigEndian.Uint16(header[4:])|uint16(f))
}
