package envelope

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"iter"
	"math"
)

// A MULTI message (protocol 1.1) carries records of several topics in the
// order the publisher accepted them. Four frames:
//
//	frame 0: prefix   a common prefix of every topic in the message, 0..255 bytes
//	frame 1: header   kind MULTI, flags 0, count = records, seq 0
//	frame 2: index    the topic table, then the table entry of each record
//	frame 3: records  count records, each a 4-byte length and that many bytes
//
// The index: a 2-byte entry count n (1..count); n entries, each a 1-byte
// topic length L (1..255), L topic bytes and the 8-byte sequence of the
// entry's first record; then count 2-byte entry numbers (0..n-1), one per
// record, in record order. The records of one entry have consecutive
// sequences from its first, in record order. The header's len is the
// length of frames 2 and 3 together, its crc the CRC-32C of frame 2
// followed by frame 3.
//
// Frame 0 is what ZeroMQ prefix subscriptions match, so a SUB socket that
// filters on receipt (libzmq does) keeps a MULTI only if one of its
// prefixes is a prefix of frame 0, and then every topic in it matches that
// prefix too. docs/protocol.md states the publisher's side of the rule.

// multiEntryOverhead is what a table entry costs besides its topic.
const multiEntryOverhead = 1 + 8

// MultiTopic is one entry of a MULTI message's topic table.
type MultiTopic struct {
	// Topic aliases the message's index frame.
	Topic []byte
	// First is the sequence of the entry's first record.
	First uint64
}

// decodeMulti is Decode for a four-frame MULTI message whose header h
// was parsed from frames[1]; verify says whether to check the checksum.
func decodeMulti(frames [][]byte, h Header, lim Limits, verify bool) (Message, error) {
	var m Message
	prefix, idx, rec := frames[0], frames[2], frames[3]
	if len(prefix) > lim.MaxTopic {
		return m, fmt.Errorf("%w: MULTI prefix of %d bytes exceeds limit %d", ErrTopic, len(prefix), lim.MaxTopic)
	}
	if len(prefix) > 0 && prefix[0] == 0 {
		return m, fmt.Errorf("%w: MULTI prefix %q starts with the reserved zero byte", ErrTopic, prefix)
	}
	size := uint64(len(idx)) + uint64(len(rec))
	if size > uint64(lim.MaxPayload) {
		return m, fmt.Errorf("%w: %d bytes exceeds limit %d", ErrPayloadSize, size, lim.MaxPayload)
	}
	if size != uint64(h.Len) {
		return m, fmt.Errorf("%w: frames have %d bytes, header says %d", ErrPayloadSize, size, h.Len)
	}
	if verify {
		if sum := crc32.Update(Checksum(idx), castagnoli, rec); sum != h.CRC {
			return m, fmt.Errorf("%w: %#08x, header says %#08x", ErrChecksum, sum, h.CRC)
		}
	}
	if err := checkMultiIndex(idx, prefix, int(h.Count), lim); err != nil {
		return m, err
	}
	if err := checkRecords(rec, int(h.Count)); err != nil {
		return m, err
	}
	m.Topic, m.Header, m.Index, m.Payload = prefix, h, idx, rec
	return m, nil
}

// checkMultiIndex verifies that p is a well-formed index for count
// records whose topics all start with prefix.
func checkMultiIndex(p, prefix []byte, count int, lim Limits) error {
	if len(p) < 2 {
		return fmt.Errorf("%w: %d bytes", ErrIndex, len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if n == 0 || n > count {
		return fmt.Errorf("%w: %d table entries for %d records", ErrIndex, n, count)
	}
	p = p[2:]
	for i := 0; i < n; i++ {
		if len(p) < 1 || len(p) < 1+int(p[0])+8 {
			return fmt.Errorf("%w: entry %d of %d truncated", ErrIndex, i+1, n)
		}
		l := int(p[0])
		topic := p[1 : 1+l]
		switch {
		case l == 0:
			return fmt.Errorf("%w: entry %d has an empty topic", ErrTopic, i+1)
		case l > lim.MaxTopic:
			return fmt.Errorf("%w: entry %d: %d bytes exceeds limit %d", ErrTopic, i+1, l, lim.MaxTopic)
		case topic[0] == 0:
			return fmt.Errorf("%w: entry %d: %q starts with the reserved zero byte", ErrTopic, i+1, topic)
		case len(topic) < len(prefix) || string(topic[:len(prefix)]) != string(prefix):
			return fmt.Errorf("%w: entry %d: %q does not start with the prefix %q", ErrTopic, i+1, topic, prefix)
		}
		// Bounding first by the whole message's count, not the entry's,
		// needs no per-entry counters, and is no restriction in practice.
		first := binary.BigEndian.Uint64(p[1+l:])
		if first == 0 || first > math.MaxUint64-uint64(count-1) {
			return fmt.Errorf("%w: entry %d starts at %d", ErrSequence, i+1, first)
		}
		p = p[1+l+8:]
	}
	if len(p) != 2*count {
		return fmt.Errorf("%w: %d bytes of record entries, want %d", ErrIndex, len(p), 2*count)
	}
	for i := 0; i < count; i++ {
		if e := int(binary.BigEndian.Uint16(p[2*i:])); e >= n {
			return fmt.Errorf("%w: record %d names entry %d of %d", ErrIndex, i+1, e, n)
		}
	}
	return nil
}

// MultiTopics appends the topic table of a MULTI message to dst and
// returns it; the topics alias the message. It must only be called on a
// MULTI Message returned by Decode.
func (m *Message) MultiTopics(dst []MultiTopic) []MultiTopic {
	p := m.Index
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	for i := 0; i < n; i++ {
		l := int(p[0])
		dst = append(dst, MultiTopic{Topic: p[1 : 1+l : 1+l], First: binary.BigEndian.Uint64(p[1+l:])})
		p = p[1+l+8:]
	}
	return dst
}

// MultiEntry returns the table entry of record i (from 0) of a MULTI
// message. It must only be called on a MULTI Message returned by Decode,
// with i below Count.
func (m *Message) MultiEntry(i int) int {
	order := m.Index[len(m.Index)-2*int(m.Count):]
	return int(binary.BigEndian.Uint16(order[2*i:]))
}

// MultiRecords iterates over the records of a MULTI message, in order, as
// (table entry, payload) pairs. A record's sequence is its entry's First
// plus the number of records of the same entry before it. The payloads
// alias the message. It must only be called on a MULTI Message returned
// by Decode.
func (m *Message) MultiRecords() iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) {
		order := m.Index[len(m.Index)-2*int(m.Count):]
		p := m.Payload
		for i := 0; i < int(m.Count); i++ {
			l := binary.BigEndian.Uint32(p)
			if !yield(int(binary.BigEndian.Uint16(order[2*i:])), p[4:4+l:4+l]) {
				return
			}
			p = p[4+l:]
		}
	}
}

// BatchBuilder assembles the records a publisher accepted into one
// message: a DATA message when they all have one topic, else a MULTI.
// Records go into one caller-owned buffer as they are added, each a
// 4-byte length and the bytes, which is the payload of a DATA batch as it
// stands; Finish writes the topic (or prefix), the header and, for MULTI,
// the index into a second caller-owned buffer. Reusing both makes
// building allocation-free. The zero value is ready for Reset.
type BatchBuilder struct {
	rec    []byte
	meta   []byte
	topics []batchTopic
	order  []uint16 // table entry of each record, once there are two topics
	next   []uint64 // EachRun's scratch: the next sequence of each entry
	h      Header
	// verbatim: the message is one taken whole (ResetData); Finish keeps
	// its time and checksum, and for MULTI its prefix and index.
	verbatim bool
	prefix   []byte
	index    []byte
	table    []MultiTopic // ResetData's scratch
}

type batchTopic struct {
	name  string
	first uint64
	n     int
}

// Reset starts an empty message with h's Publisher, Epoch and Time,
// storing records in rec[:0] and the other frames in meta[:0].
func (b *BatchBuilder) Reset(rec, meta []byte, h Header) {
	b.rec, b.meta = rec[:0], meta[:0]
	clear(b.topics)
	b.topics, b.order = b.topics[:0], b.order[:0]
	b.h = Header{Publisher: h.Publisher, Epoch: h.Epoch, Time: h.Time}
	b.verbatim = false
}

// ResetData starts a message that is the decoded DATA or MULTI message m
// as it arrived, copying it into rec[:0] (and its MULTI prefix and index
// into buffers of the builder's): Finish reproduces m's frames byte for
// byte (its time and checksum are kept, and SetTime does nothing),
// without the REPLAY flag, and Topic, Count and EachRun describe it. No
// record can be added to it. It is how a relay forwards a message
// without encoding it again; m must have passed Decode.
func (b *BatchBuilder) ResetData(rec, meta []byte, m *Message) {
	b.Reset(rec, meta, m.Header)
	if m.Kind == KindMulti {
		b.table = m.MultiTopics(b.table[:0])
		for _, t := range b.table {
			b.topics = append(b.topics, batchTopic{name: string(t.Topic), first: t.First})
		}
		clear(b.table)
		for e := range m.MultiRecords() {
			b.order = append(b.order, uint16(e))
			b.topics[e].n++
		}
		b.prefix = append(b.prefix[:0], m.Topic...)
		b.index = append(b.index[:0], m.Index...)
	} else {
		if m.Count == 1 && m.Flags&FlagBatch == 0 {
			b.rec = binary.BigEndian.AppendUint32(b.rec, uint32(len(m.Payload)))
		}
		b.topics = append(b.topics, batchTopic{name: string(m.Topic), first: m.Seq, n: int(m.Count)})
	}
	b.rec = append(b.rec, m.Payload...)
	b.h = m.Header
	b.h.Flags &^= FlagReplay
	b.verbatim = true
}

// Verbatim reports whether the message was started by ResetData.
func (b *BatchBuilder) Verbatim() bool { return b.verbatim }

// AddTopic adds an entry to the topic table and returns its number, for
// Add: the entry's records are topic's, with sequences first, first+1, ...
// in the order they are added. The caller keeps topics valid data topics
// and their entries at most MaxRecords.
func (b *BatchBuilder) AddTopic(topic string, first uint64) int {
	if len(b.topics) == 1 {
		// A second topic: the message will be a MULTI, whose index names
		// the entry of every record, the earlier ones included.
		for range b.topics[0].n {
			b.order = append(b.order, 0)
		}
	}
	b.topics = append(b.topics, batchTopic{name: topic, first: first})
	return len(b.topics) - 1
}

// Add appends one record of table entry t. The caller keeps Count below
// MaxRecords.
func (b *BatchBuilder) Add(t int, payload []byte) {
	if n := len(b.rec); cap(b.rec)-n >= recordOverhead+len(payload) {
		// Within capacity, b.rec = b.rec[:...] changes only the length:
		// no pointer is stored, so no write barrier runs while the
		// collector marks (with appends, it was a sixth of Add).
		b.rec = b.rec[:n+recordOverhead+len(payload)]
		binary.BigEndian.PutUint32(b.rec[n:], uint32(len(payload)))
		copy(b.rec[n+recordOverhead:], payload)
	} else {
		b.rec = binary.BigEndian.AppendUint32(b.rec, uint32(len(payload)))
		b.rec = append(b.rec, payload...)
	}
	b.topics[t].n++
	b.h.Count++
	if len(b.topics) > 1 {
		b.order = append(b.order, uint16(t))
	}
}

// Count is the number of records added since Reset.
func (b *BatchBuilder) Count() int { return int(b.h.Count) }

// Topics is the number of table entries.
func (b *BatchBuilder) Topics() int { return len(b.topics) }

// Topic returns table entry t: its topic, first sequence and records.
func (b *BatchBuilder) Topic(t int) (topic string, first uint64, records int) {
	e := &b.topics[t]
	return e.name, e.first, e.n
}

// Size is the bytes the records take, with their length prefixes.
func (b *BatchBuilder) Size() int { return len(b.rec) }

// SetTime sets the header's time (Unix nanoseconds), e.g. when the
// message is handed to the socket rather than when it was begun.
func (b *BatchBuilder) SetTime(t int64) {
	if !b.verbatim {
		b.h.Time = t
	}
}

// Finish completes the message and appends its frames to dst[:0]: three
// for a DATA message (exactly what Builder makes of the same records),
// four for a MULTI. The frames alias the returned buffers, which the
// caller passes to the next Reset. Finish needs at least one record.
func (b *BatchBuilder) Finish(dst [][]byte) (frames [][]byte, rec, meta []byte) {
	h := b.h
	meta = b.meta
	if b.verbatim && h.Kind == KindMulti {
		meta = append(meta, b.prefix...)
		pl := len(meta)
		meta = AppendHeader(meta, &h)
		ix := len(meta)
		meta = append(meta, b.index...)
		return append(dst[:0], meta[:pl:pl], meta[pl:ix:ix], meta[ix:len(meta):len(meta)], b.rec), b.rec, meta
	}
	if b.verbatim {
		payload := b.rec
		if h.Flags&FlagBatch == 0 {
			payload = payload[recordOverhead:]
		}
		meta = append(meta, b.topics[0].name...)
		tl := len(meta)
		meta = AppendHeader(meta, &h)
		return append(dst[:0], meta[:tl:tl], meta[tl:tl+HeaderSize:tl+HeaderSize], payload), b.rec, meta
	}
	if len(b.topics) == 1 {
		t := b.topics[0]
		h.Kind, h.Seq = KindData, t.first
		payload := b.rec
		if h.Count == 1 {
			payload = payload[recordOverhead:]
		} else {
			h.Flags = FlagBatch
		}
		h.Len, h.CRC = uint32(len(payload)), Checksum(payload)
		meta = append(meta, t.name...)
		tl := len(meta)
		meta = AppendHeader(meta, &h)
		return append(dst[:0], meta[:tl:tl], meta[tl:tl+HeaderSize:tl+HeaderSize], payload), b.rec, meta
	}
	h.Kind = KindMulti
	prefix := b.topics[0].name
	for _, t := range b.topics[1:] {
		prefix = commonPrefix(prefix, t.name)
	}
	meta = append(meta, prefix...)
	pl := len(meta)
	meta = append(meta, make([]byte, HeaderSize)...)
	ix := len(meta)
	meta = binary.BigEndian.AppendUint16(meta, uint16(len(b.topics)))
	for _, t := range b.topics {
		meta = append(meta, byte(len(t.name)))
		meta = append(meta, t.name...)
		meta = binary.BigEndian.AppendUint64(meta, t.first)
	}
	for _, e := range b.order {
		meta = binary.BigEndian.AppendUint16(meta, e)
	}
	idx := meta[ix:len(meta):len(meta)]
	h.Len = uint32(len(idx) + len(b.rec))
	h.CRC = crc32.Update(Checksum(idx), castagnoli, b.rec)
	putHeader(meta[pl:ix], &h)
	return append(dst[:0], meta[:pl:pl], meta[pl:ix:ix], idx, b.rec), b.rec, meta
}

// commonPrefix returns the longest common prefix of a and b.
func commonPrefix(a, b string) string {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return a[:i]
		}
	}
	return a[:n]
}

// MultiEntrySize is what a table entry for topic adds to a MULTI
// message's index, besides the 2 bytes each record adds.
func MultiEntrySize(topic string) int { return multiEntryOverhead + len(topic) }

// Run is a run of consecutive records of one table entry in a message a
// BatchBuilder built: what one DATA message of the entry's topic would
// carry.
type Run struct {
	Entry int    // table entry
	Seq   uint64 // sequence of the run's first record
	Count int    // records
	// Records are the run's records as they stand in the message, each a
	// 4-byte length and the bytes: a DATA batch's payload.
	Records []byte
}

// EachRun calls fn for every run of the message, in record order, until
// fn returns false. A message of one topic is one run. It may be called
// after Finish, while the buffers are not reused.
func (b *BatchBuilder) EachRun(fn func(Run) bool) {
	b.next = b.next[:0]
	for _, t := range b.topics {
		b.next = append(b.next, t.first)
	}
	if len(b.topics) == 1 {
		fn(Run{Entry: 0, Seq: b.next[0], Count: int(b.h.Count), Records: b.rec})
		return
	}
	p, start := 0, 0
	for i := 0; i < len(b.order); {
		e := int(b.order[i])
		r := Run{Entry: e, Seq: b.next[e]}
		for ; i < len(b.order) && int(b.order[i]) == e; i++ {
			p += recordOverhead + int(binary.BigEndian.Uint32(b.rec[p:]))
			r.Count++
		}
		r.Records = b.rec[start:p:p]
		start = p
		b.next[e] += uint64(r.Count)
		if !fn(r) {
			return
		}
	}
}

// RunData writes into hdr (HeaderSize bytes) the header of the DATA
// message that carries run r alone, as Builder would encode it with the
// builder's Publisher, Epoch and Time, and returns that message's payload,
// which aliases r.Records.
func (b *BatchBuilder) RunData(hdr []byte, r Run) (payload []byte) {
	h := Header{Kind: KindData, Count: uint16(r.Count), Publisher: b.h.Publisher, Epoch: b.h.Epoch, Seq: r.Seq, Time: b.h.Time}
	payload = r.Records
	if r.Count == 1 {
		payload = payload[recordOverhead:]
	} else {
		h.Flags = FlagBatch
	}
	h.Len, h.CRC = uint32(len(payload)), Checksum(payload)
	putHeader(hdr[:HeaderSize], &h)
	return payload
}
