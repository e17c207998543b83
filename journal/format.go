package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/syncmq/syncmq/envelope"
)

// On-disk format, version 1. docs/durability.md describes it byte by
// byte; every integer is big-endian, every checksum CRC-32C (Castagnoli),
// the same as the envelope's payload checksum.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(p []byte) uint32                 { return crc32.Checksum(p, castagnoli) }
func crcUpdate(c uint32, p []byte) uint32 { return crc32.Update(c, castagnoli, p) }

const formatVersion = 1

// Meta file (metaName): which publisher the directory belongs to and the
// highest epoch ever begun in it.
//
//	 0  8  magic "SQJOURNL"
//	 8  1  version
//	 9  7  zero
//	16 16  publisher id
//	32  8  highest epoch begun
//	40  4  CRC-32C of bytes 0..39
const (
	metaName  = "JOURNAL"
	lockName  = "LOCK"
	metaMagic = "SQJOURNL"
	metaSize  = 44
)

type meta struct {
	publisher envelope.ID
	maxEpoch  uint64
}

func appendMeta(dst []byte, m meta) []byte {
	start := len(dst)
	dst = append(dst, metaMagic...)
	dst = append(dst, formatVersion, 0, 0, 0, 0, 0, 0, 0)
	dst = append(dst, m.publisher[:]...)
	dst = binary.BigEndian.AppendUint64(dst, m.maxEpoch)
	return binary.BigEndian.AppendUint32(dst, crc(dst[start:]))
}

func decodeMeta(b []byte) (meta, error) {
	var m meta
	switch {
	case len(b) != metaSize:
		return m, fmt.Errorf("%d bytes, want %d", len(b), metaSize)
	case string(b[:8]) != metaMagic:
		return m, fmt.Errorf("bad magic % x", b[:8])
	case binary.BigEndian.Uint32(b[40:]) != crc(b[:40]):
		return m, errors.New("checksum mismatch")
	case b[8] != formatVersion:
		return m, fmt.Errorf("format version %d, want %d", b[8], formatVersion)
	}
	copy(m.publisher[:], b[16:32])
	m.maxEpoch = binary.BigEndian.Uint64(b[32:])
	return m, nil
}

// Segment file header, at offset 0 of every segment:
//
//	 0  4  magic "SQJS"
//	 4  1  version
//	 5  3  zero
//	 8 16  publisher id
//	24  4  segment id (also in the file name)
//	28  4  CRC-32C of bytes 0..27
const (
	segMagic      = "SQJS"
	segHeaderSize = 32
)

func appendSegHeader(dst []byte, pub envelope.ID, id uint32) []byte {
	start := len(dst)
	dst = append(dst, segMagic...)
	dst = append(dst, formatVersion, 0, 0, 0)
	dst = append(dst, pub[:]...)
	dst = binary.BigEndian.AppendUint32(dst, id)
	return binary.BigEndian.AppendUint32(dst, crc(dst[start:]))
}

// checkSegHeader reports whether b is a valid header of segment id of
// publisher pub. A damaged header does not stop the records behind it
// from being read (each record names its publisher); a valid header of
// another publisher does.
func checkSegHeader(b []byte, pub envelope.ID, id uint32) (valid bool, err error) {
	if len(b) < segHeaderSize || string(b[:4]) != segMagic || binary.BigEndian.Uint32(b[28:]) != crc(b[:28]) {
		return false, nil
	}
	if b[4] != formatVersion {
		return true, fmt.Errorf("segment %d: format version %d, want %d", id, b[4], formatVersion)
	}
	if envelope.ID(b[8:24]) != pub {
		return true, fmt.Errorf("%w: segment %d belongs to publisher %s", ErrPublisher, id, envelope.ID(b[8:24]))
	}
	return binary.BigEndian.Uint32(b[24:]) == id, nil
}

// Record framing. Every record starts with a 16-byte head:
//
//	 0  4  marker "SQJR" (lets a scan find the next record after damage)
//	 4  4  body length N (the bytes after the head)
//	 8  1  type: recBatch or recEnd
//	 9  1  topic length L (recBatch: 1..255; recEnd: 0)
//	10  2  zero
//	12  4  CRC-32C of head bytes 0..11 followed by the first C body bytes
//
// recBatch body: topic (L bytes), envelope header (56 bytes), payload
// (N-L-56 bytes, equal to the header's len). C = L+56: the payload is
// covered by the envelope header's own CRC-32C, which the head checksum
// covers, so every byte is checked without hashing the payload twice.
//
// recEnd body: epoch (8), time in Unix ns (8), entry count n (4), then n
// entries of [1-byte topic length][topic][8-byte final sequence]. C = N.
const (
	recMarker   = "SQJR"
	recHeadSize = 16
	recBatch    = 1
	recEnd      = 2

	// maxBody bounds a record body: the largest topic, header and payload
	// an envelope may carry (envelope.DefaultLimits).
	maxBody = 255 + envelope.HeaderSize + 16<<20
	// maxEndEntries bounds the topics one recEnd record lists; more
	// topics take several records.
	maxEndEntries = 4096
	endFixed      = 20
)

var (
	// errShort says the buffer ends inside the record: more bytes are
	// needed, or (at the end of a file) the record is torn.
	errShort = errors.New("record truncated")
	// errCorrupt says the bytes are not a valid record.
	errCorrupt = errors.New("record corrupt")
)

// record is a decoded record. Slices alias the buffer it was decoded from.
type record struct {
	typ     byte
	topic   []byte
	header  []byte // recBatch: the 56-byte envelope header
	payload []byte // recBatch: the payload; recEnd: the entries
	h       envelope.Header
	// recEnd fields
	epoch   uint64
	time    int64
	entries int
}

// recordSize returns the on-disk size of a batch record.
func recordSize(topic, payload int) int {
	return recHeadSize + topic + envelope.HeaderSize + payload
}

// appendBatchRecord appends the record of one DATA envelope. The caller
// has validated the frames (checkFrames).
func appendBatchRecord(dst []byte, topic, header, payload []byte) []byte {
	start := len(dst)
	n := len(topic) + len(header) + len(payload)
	dst = append(dst, recMarker...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, recBatch, byte(len(topic)), 0, 0, 0, 0, 0, 0)
	dst = append(dst, topic...)
	dst = append(dst, header...)
	c := crcUpdate(crc(dst[start:start+12]), dst[start+recHeadSize:])
	binary.BigEndian.PutUint32(dst[start+12:], c)
	return append(dst, payload...)
}

// endEntry is one topic's final sequence in a recEnd record.
type endEntry struct {
	topic string
	final uint64
}

// appendEndRecord appends a recEnd record listing ents (at most
// maxEndEntries).
func appendEndRecord(dst []byte, epoch uint64, t int64, ents []endEntry) []byte {
	start := len(dst)
	dst = append(dst, recMarker...)
	dst = append(dst, 0, 0, 0, 0) // length, filled below
	dst = append(dst, recEnd, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, epoch)
	dst = binary.BigEndian.AppendUint64(dst, uint64(t))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ents)))
	for _, e := range ents {
		dst = append(dst, byte(len(e.topic)))
		dst = append(dst, e.topic...)
		dst = binary.BigEndian.AppendUint64(dst, e.final)
	}
	binary.BigEndian.PutUint32(dst[start+4:], uint32(len(dst)-start-recHeadSize))
	c := crcUpdate(crc(dst[start:start+12]), dst[start+recHeadSize:])
	binary.BigEndian.PutUint32(dst[start+12:], c)
	return dst
}

// recordHead checks the 16-byte head at the start of b without checking
// its checksum and returns the record's total size and how many body
// bytes the head checksum covers.
func recordHead(b []byte) (size, covered int, err error) {
	if len(b) < recHeadSize {
		return 0, 0, errShort
	}
	if string(b[:4]) != recMarker {
		return 0, 0, fmt.Errorf("%w: no record marker", errCorrupt)
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n > maxBody {
		return 0, 0, fmt.Errorf("%w: body length %d exceeds %d", errCorrupt, n, maxBody)
	}
	if b[10] != 0 || b[11] != 0 {
		return 0, 0, fmt.Errorf("%w: reserved bytes set", errCorrupt)
	}
	l := int(b[9])
	switch b[8] {
	case recBatch:
		covered = l + envelope.HeaderSize
		if l == 0 || int(n) < covered {
			return 0, 0, fmt.Errorf("%w: batch body of %d bytes with a %d-byte topic", errCorrupt, n, l)
		}
	case recEnd:
		covered = int(n)
		if l != 0 || n < endFixed {
			return 0, 0, fmt.Errorf("%w: end record of %d bytes with a %d-byte topic", errCorrupt, n, l)
		}
	default:
		return 0, 0, fmt.Errorf("%w: unknown type %d", errCorrupt, b[8])
	}
	return recHeadSize + int(n), covered, nil
}

// headSumOK reports whether the head checksum of the record at the start
// of b matches; b holds at least recHeadSize+covered bytes.
func headSumOK(b []byte, covered int) bool {
	return crcUpdate(crc(b[:12]), b[recHeadSize:recHeadSize+covered]) == binary.BigEndian.Uint32(b[12:])
}

// decodeRecord decodes the record at the start of b and returns it and
// its length. It verifies everything: framing, both checksums, the
// envelope header (a DATA envelope of publisher pub) and the end-record
// table. It never panics; errors wrap errShort or errCorrupt.
func decodeRecord(b []byte, pub envelope.ID) (record, int, error) {
	var r record
	size, covered, err := recordHead(b)
	if err != nil {
		return r, 0, err
	}
	if len(b) < size {
		return r, 0, errShort
	}
	if !headSumOK(b, covered) {
		return r, 0, fmt.Errorf("%w: head checksum mismatch", errCorrupt)
	}
	r.typ = b[8]
	body := b[recHeadSize:size]
	if r.typ == recEnd {
		return r, size, decodeEnd(&r, body)
	}
	l := int(b[9])
	r.topic, r.header, r.payload = body[:l:l], body[l:covered:covered], body[covered:]
	h, err := envelope.ParseHeader(r.header)
	if err != nil {
		return r, 0, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	r.h = h
	switch {
	case h.Kind != envelope.KindData:
		return r, 0, fmt.Errorf("%w: envelope kind %v", errCorrupt, h.Kind)
	case h.Publisher != pub:
		return r, 0, fmt.Errorf("%w: envelope of publisher %s", errCorrupt, h.Publisher)
	case uint64(h.Len) != uint64(len(r.payload)):
		return r, 0, fmt.Errorf("%w: payload of %d bytes, header says %d", errCorrupt, len(r.payload), h.Len)
	case envelope.CheckTopic(r.topic, h.Kind, envelope.Limits{}) != nil:
		return r, 0, fmt.Errorf("%w: bad topic", errCorrupt)
	case envelope.Checksum(r.payload) != h.CRC:
		return r, 0, fmt.Errorf("%w: payload checksum mismatch", errCorrupt)
	}
	return r, size, nil
}

func decodeEnd(r *record, body []byte) error {
	if len(body) < endFixed {
		return fmt.Errorf("%w: end record of %d bytes", errCorrupt, len(body))
	}
	r.epoch = binary.BigEndian.Uint64(body)
	r.time = int64(binary.BigEndian.Uint64(body[8:]))
	n := binary.BigEndian.Uint32(body[16:])
	if n > maxEndEntries {
		return fmt.Errorf("%w: end record lists %d topics", errCorrupt, n)
	}
	r.entries = int(n)
	r.payload = body[endFixed:]
	p := r.payload
	for i := 0; i < r.entries; i++ {
		if len(p) < 1 || p[0] == 0 || len(p) < 1+int(p[0])+8 {
			return fmt.Errorf("%w: end record entry %d truncated", errCorrupt, i)
		}
		p = p[1+int(p[0])+8:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d bytes after the end record entries", errCorrupt, len(p))
	}
	return nil
}

// endEntries calls fn for each entry of a decoded recEnd record.
func (r *record) endEntries(fn func(topic []byte, final uint64)) {
	p := r.payload
	for i := 0; i < r.entries; i++ {
		l := int(p[0])
		fn(p[1:1+l], binary.BigEndian.Uint64(p[1+l:]))
		p = p[1+l+8:]
	}
}
