package envelope

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"iter"
	"unicode/utf8"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of p, as carried in Header.CRC.
func Checksum(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// Limits bound what Decode accepts. Zero fields take the DefaultLimits value.
type Limits struct {
	// MaxTopic is the longest topic in bytes.
	MaxTopic int
	// MaxPayload is the largest payload frame in bytes.
	MaxPayload int
}

// DefaultLimits are the limits used when a field of Limits is zero.
var DefaultLimits = Limits{MaxTopic: 255, MaxPayload: 16 << 20}

func (l Limits) withDefaults() Limits {
	if l.MaxTopic <= 0 {
		l.MaxTopic = DefaultLimits.MaxTopic
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultLimits.MaxPayload
	}
	return l
}

// Message is a decoded envelope. Topic, Index and Payload alias the
// frames it was decoded from.
type Message struct {
	// Topic is frame 0: the topic, or for MULTI a common prefix of every
	// topic in the message (possibly empty).
	Topic []byte
	Header
	// Index is frame 2 of a MULTI message, its topic table and the topic
	// of each record (see MultiTopics); nil for other kinds.
	Index []byte
	// Payload is the payload frame: for MULTI frame 3, the records.
	Payload []byte
}

// Decode validates a message and returns it without copying: three
// frames, or four for MULTI. It checks frame count, header, topic,
// payload size against the header and lim, the checksum, for batches
// every record boundary, and for MULTI the topic table and the topic of
// every record. Errors wrap the sentinels in errors.go. Decode never
// panics and never allocates.
func Decode(frames [][]byte, lim Limits) (Message, error) {
	return decode(frames, lim, true)
}

// DecodeInProcess is Decode without the checksum, for frames that never
// left the process: the publisher's own buffers, lent to a subscriber in
// the same process (an inproc:// endpoint) without a copy. The CRC-32C
// guards against corruption between the encoder and the decoder (a
// socket, a disk, a faulty copy); memory handed over in place never
// crossed any of them, so there is nothing for it to catch, and at small
// records it is a tenth of the subscriber's work. Everything else is
// checked as Decode checks it: a malformed message is refused all the
// same, and the records can be iterated safely. Never use it on bytes
// read from a socket or a file.
func DecodeInProcess(frames [][]byte, lim Limits) (Message, error) {
	return decode(frames, lim, false)
}

func decode(frames [][]byte, lim Limits, verify bool) (Message, error) {
	var m Message
	if len(frames) != 3 && len(frames) != 4 {
		return m, fmt.Errorf("%w: %d, want 3 (4 for MULTI)", ErrFrameCount, len(frames))
	}
	h, err := ParseHeader(frames[1])
	if err != nil {
		return m, err
	}
	if (h.Kind == KindMulti) != (len(frames) == 4) {
		return m, fmt.Errorf("%w: %d for %v", ErrFrameCount, len(frames), h.Kind)
	}
	lim = lim.withDefaults()
	if h.Kind == KindMulti {
		return decodeMulti(frames, h, lim, verify)
	}
	if err := CheckTopic(frames[0], h.Kind, lim); err != nil {
		return m, err
	}
	p := frames[2]
	if len(p) > lim.MaxPayload {
		return m, fmt.Errorf("%w: %d bytes exceeds limit %d", ErrPayloadSize, len(p), lim.MaxPayload)
	}
	if uint64(len(p)) != uint64(h.Len) {
		return m, fmt.Errorf("%w: frame has %d bytes, header says %d", ErrPayloadSize, len(p), h.Len)
	}
	if verify {
		if sum := Checksum(p); sum != h.CRC {
			return m, fmt.Errorf("%w: %#08x, header says %#08x", ErrChecksum, sum, h.CRC)
		}
	}
	switch h.Kind {
	case KindData:
		if h.Flags&FlagBatch != 0 {
			if err := checkRecords(p, int(h.Count)); err != nil {
				return m, err
			}
		}
	case KindHello:
		if len(p) != NonceSize {
			return m, fmt.Errorf("%w: HELLO nonce is %d bytes, want %d", ErrPayloadSize, len(p), NonceSize)
		}
	case KindHeartbeat, KindEnd:
		if err := checkTable(p); err != nil {
			return m, err
		}
	case KindLoss:
		if _, err := ParseLoss(p); err != nil {
			return m, err
		}
	case KindAbort:
		if len(p) > MaxAbortReason || !utf8.Valid(p) {
			return m, fmt.Errorf("%w: ABORT reason of %d bytes must be UTF-8 of at most %d", ErrPayloadSize, len(p), MaxAbortReason)
		}
	}
	m.Topic, m.Header, m.Payload = frames[0], h, p
	return m, nil
}

// MaxAbortReason bounds the reason an ABORT carries.
const MaxAbortReason = 1024

// CheckTopic reports whether topic is valid for a message of kind k: data
// topics are 1..MaxTopic bytes and do not start with a zero byte; control
// messages use ControlTopic.
func CheckTopic(topic []byte, k Kind, lim Limits) error {
	lim = lim.withDefaults()
	if k != KindData {
		if string(topic) != ControlTopic {
			return fmt.Errorf("%w: %v on topic %q, want the control topic", ErrTopic, k, topic)
		}
		return nil
	}
	switch {
	case len(topic) == 0:
		return fmt.Errorf("%w: empty", ErrTopic)
	case len(topic) > lim.MaxTopic:
		return fmt.Errorf("%w: %d bytes exceeds limit %d", ErrTopic, len(topic), lim.MaxTopic)
	case topic[0] == 0:
		return fmt.Errorf("%w: %q starts with the reserved zero byte", ErrTopic, topic)
	}
	return nil
}

// checkRecords verifies that p is exactly n length-prefixed records.
func checkRecords(p []byte, n int) error {
	for i := 0; i < n; i++ {
		if len(p) < 4 {
			return fmt.Errorf("%w: record %d of %d truncated", ErrRecords, i+1, n)
		}
		l := binary.BigEndian.Uint32(p)
		if uint64(l) > uint64(len(p)-4) {
			return fmt.Errorf("%w: record %d of %d claims %d bytes, %d left", ErrRecords, i+1, n, l, len(p)-4)
		}
		p = p[4+l:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrRecords, len(p), n)
	}
	return nil
}

// Records iterates over the records of a DATA message as (sequence,
// payload) pairs, in sequence order. The payloads alias the message. It
// must only be called on a Message returned by Decode (or built by Builder).
func (m *Message) Records() iter.Seq2[uint64, []byte] {
	return func(yield func(uint64, []byte) bool) {
		if m.Flags&FlagBatch == 0 {
			yield(m.Seq, m.Payload)
			return
		}
		p := m.Payload
		for i := uint64(0); i < uint64(m.Count); i++ {
			l := binary.BigEndian.Uint32(p)
			if !yield(m.Seq+i, p[4:4+l:4+l]) {
				return
			}
			p = p[4+l:]
		}
	}
}
