package envelope

import (
	"encoding/binary"
	"math"
)

// Frames are the three frames of an encoded message.
type Frames [3][]byte

// Builder assembles one message, possibly a batch of records, in a single
// caller-owned buffer: topic, then header, then records. Reusing the buffer
// across messages makes building allocation-free. The zero value is ready
// for Begin.
type Builder struct {
	buf      []byte
	topicEnd int
	h        Header
}

// recordOverhead is the length prefix each batched record carries.
const recordOverhead = 4

// MaxRecords is the most records one message can carry.
const MaxRecords = math.MaxUint16

// Begin starts a message on topic with header h (Count, Len, CRC and
// FlagBatch are filled in by Finish), storing it in buf[:0].
func (b *Builder) Begin(buf []byte, topic string, h Header) {
	b.buf = append(buf[:0], topic...)
	b.topicEnd = len(b.buf)
	b.buf = append(b.buf, make([]byte, HeaderSize)...)
	h.Count = 0
	b.h = h
}

// Add appends one record. The caller keeps Count below MaxRecords.
func (b *Builder) Add(payload []byte) {
	b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(len(payload)))
	b.buf = append(b.buf, payload...)
	b.h.Count++
}

// SetTime sets the header's time (Unix nanoseconds), e.g. when the
// message is handed to the socket rather than when it was begun.
func (b *Builder) SetTime(t int64) { b.h.Time = t }

// Count is the number of records added since Begin.
func (b *Builder) Count() int { return int(b.h.Count) }

// Size is the number of bytes the message occupies so far.
func (b *Builder) Size() int { return len(b.buf) }

// Finish completes the header and returns the frames, which alias the
// returned buffer. A single record is sent as a raw payload without a length
// prefix or FlagBatch, so simple clients never need to parse batches.
func (b *Builder) Finish() (Frames, []byte) {
	hdrEnd := b.topicEnd + HeaderSize
	payload := b.buf[hdrEnd:]
	b.h.Flags &^= FlagBatch
	switch {
	case b.h.Kind != KindData:
		// Control payloads are not records; Begin+AddRaw built them.
	case b.h.Count == 1:
		payload = payload[recordOverhead:]
	default:
		b.h.Flags |= FlagBatch
	}
	b.h.Len = uint32(len(payload))
	b.h.CRC = Checksum(payload)
	putHeader(b.buf[b.topicEnd:hdrEnd], &b.h)
	return Frames{b.buf[:b.topicEnd:b.topicEnd], b.buf[b.topicEnd:hdrEnd:hdrEnd], payload}, b.buf
}

// AddRaw appends bytes to the payload without a record prefix; it is for
// control messages, whose payload is not a list of records.
func (b *Builder) AddRaw(p []byte) { b.buf = append(b.buf, p...) }

// Encode appends a single-record DATA or a control message to buf and
// returns its frames and the grown buffer.
func Encode(buf []byte, topic string, h Header, payload []byte) (Frames, []byte) {
	var b Builder
	b.Begin(buf, topic, h)
	if h.Kind == KindData {
		b.Add(payload)
	} else {
		b.AddRaw(payload)
	}
	return b.Finish()
}
