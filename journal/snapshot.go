package journal

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/syncmq/syncmq/envelope"
)

// Index snapshot of a sealed segment (file NNNNNNNNNN.idx beside the
// segment), so Open can index the segment without reading it:
//
//	 0  4  magic "SQJI"
//	 4  1  version: 2 (1 lacks the epochs of the end records)
//	 5  3  zero
//	 8  4  segment id
//	12  8  length of the segment in bytes when it was sealed
//	20  4  stream count S
//	24  4  entry count E
//	28  4  end record count M
//	32     S streams: [8 epoch][8 last sequence in this segment][1 L][L topic]
//	       E entries: [4 stream number][8 first seq][2 count][8 time][4 offset][4 size]
//	       M end records: [4 offset][4 size][8 epoch] (version 1: no epoch)
//	       4  CRC-32C of every byte before it
//
// A snapshot that is missing or damaged, or disagrees with the index
// built so far, is ignored and the segment scanned instead. A valid
// snapshot is trusted over the segment: if the segment is shorter than
// the snapshot says, or an end record it lists does not verify, what the
// snapshot lists there is known to be lost (holes, see Hole), not
// silently forgotten as a torn tail would be. Records are verified again
// when read, so a snapshot never makes damaged data readable.
const (
	snapMagic     = "SQJI"
	snapVersion   = 2
	snapFixed     = 32
	snapEntrySize = 30
)

type snapStream struct {
	epoch uint64
	last  uint64
	topic string
}

type snapEntry struct {
	stream uint32
	e      entry
}

// snapEnd locates an end record; epoch is 0 in a version 1 snapshot.
type snapEnd struct {
	off, size uint32
	epoch     uint64
}

type snapshot struct {
	id      uint32
	length  int64
	streams []snapStream
	entries []snapEntry
	ends    []snapEnd
}

// appendSnapshot encodes the snapshot of seg from the index: the batches
// of seg its streams still hold, and its end records.
func appendSnapshot(dst []byte, seg *segment) []byte {
	start := len(dst)
	dst = append(dst, snapMagic...)
	dst = append(dst, snapVersion, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, seg.id)
	dst = binary.BigEndian.AppendUint64(dst, uint64(seg.size))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(seg.streams)))
	countAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(seg.ends)))
	for _, ss := range seg.streams {
		dst = binary.BigEndian.AppendUint64(dst, ss.s.ep.epoch)
		dst = binary.BigEndian.AppendUint64(dst, ss.last)
		dst = append(dst, byte(len(ss.s.topic)))
		dst = append(dst, ss.s.topic...)
	}
	n := 0
	for i, ss := range seg.streams {
		h := ss.s.held()
		// Segment ids grow along a stream: find the first of seg's.
		k := sort.Search(len(h), func(k int) bool { return h[k].seg >= seg.id })
		for _, e := range h[k:] {
			if e.seg != seg.id {
				break
			}
			dst = binary.BigEndian.AppendUint32(dst, uint32(i))
			dst = binary.BigEndian.AppendUint64(dst, e.seq)
			dst = binary.BigEndian.AppendUint16(dst, e.count)
			dst = binary.BigEndian.AppendUint64(dst, uint64(e.time))
			dst = binary.BigEndian.AppendUint32(dst, e.off)
			dst = binary.BigEndian.AppendUint32(dst, e.size)
			n++
		}
	}
	binary.BigEndian.PutUint32(dst[countAt:], uint32(n))
	for _, e := range seg.ends {
		dst = binary.BigEndian.AppendUint32(dst, e.off)
		dst = binary.BigEndian.AppendUint32(dst, e.size)
		dst = binary.BigEndian.AppendUint64(dst, e.ep.epoch)
	}
	return binary.BigEndian.AppendUint32(dst, crc(dst[start:]))
}

// decodeSnapshot decodes and checks a snapshot. It never panics.
func decodeSnapshot(b []byte) (snapshot, error) {
	var s snapshot
	if len(b) < snapFixed+4 {
		return s, fmt.Errorf("%d bytes", len(b))
	}
	body := b[:len(b)-4]
	switch {
	case string(b[:4]) != snapMagic:
		return s, fmt.Errorf("bad magic % x", b[:4])
	case binary.BigEndian.Uint32(b[len(b)-4:]) != crc(body):
		return s, fmt.Errorf("checksum mismatch")
	case b[4] != 1 && b[4] != snapVersion:
		return s, fmt.Errorf("format version %d", b[4])
	}
	endSize := uint64(16)
	if b[4] == 1 {
		endSize = 8
	}
	s.id = binary.BigEndian.Uint32(b[8:])
	length := binary.BigEndian.Uint64(b[12:])
	ns := binary.BigEndian.Uint32(b[20:])
	ne := binary.BigEndian.Uint32(b[24:])
	nm := binary.BigEndian.Uint32(b[28:])
	if length < segHeaderSize || length > MaxSegmentBytes+maxBody+recHeadSize {
		return s, fmt.Errorf("segment length %d", length)
	}
	s.length = int64(length)
	p := body[snapFixed:]
	// Each stream takes at least 18 bytes; check counts against the
	// size before allocating.
	if uint64(ns)*18+uint64(ne)*snapEntrySize+uint64(nm)*endSize > uint64(len(p)) {
		return s, fmt.Errorf("counts %d/%d/%d exceed %d bytes", ns, ne, nm, len(p))
	}
	s.streams = make([]snapStream, 0, ns)
	for i := uint32(0); i < ns; i++ {
		if len(p) < 17 || len(p) < 17+int(p[16]) {
			return s, fmt.Errorf("stream %d truncated", i)
		}
		l := int(p[16])
		if l == 0 || p[17] == 0 {
			return s, fmt.Errorf("stream %d has a bad topic", i)
		}
		s.streams = append(s.streams, snapStream{
			epoch: binary.BigEndian.Uint64(p),
			last:  binary.BigEndian.Uint64(p[8:]),
			topic: string(p[17 : 17+l]),
		})
		p = p[17+l:]
	}
	if uint64(len(p)) != uint64(ne)*snapEntrySize+uint64(nm)*endSize {
		return s, fmt.Errorf("%d bytes for %d entries and %d end records", len(p), ne, nm)
	}
	s.entries = make([]snapEntry, 0, ne)
	for i := uint32(0); i < ne; i++ {
		se := snapEntry{stream: binary.BigEndian.Uint32(p)}
		se.e = entry{
			seq:   binary.BigEndian.Uint64(p[4:]),
			count: binary.BigEndian.Uint16(p[12:]),
			time:  int64(binary.BigEndian.Uint64(p[14:])),
			seg:   s.id,
			off:   binary.BigEndian.Uint32(p[22:]),
			size:  binary.BigEndian.Uint32(p[26:]),
		}
		if err := s.checkEntry(&se); err != nil {
			return s, fmt.Errorf("entry %d: %w", i, err)
		}
		s.entries = append(s.entries, se)
		p = p[snapEntrySize:]
	}
	for i := uint32(0); i < nm; i++ {
		e := snapEnd{off: binary.BigEndian.Uint32(p), size: binary.BigEndian.Uint32(p[4:])}
		if endSize == 16 {
			if e.epoch = binary.BigEndian.Uint64(p[8:]); e.epoch == 0 {
				return s, fmt.Errorf("end record %d of epoch 0", i)
			}
		}
		if e.off < segHeaderSize || e.size < recHeadSize+endFixed || uint64(e.off)+uint64(e.size) > length {
			return s, fmt.Errorf("end record %d out of bounds", i)
		}
		s.ends = append(s.ends, e)
		p = p[endSize:]
	}
	return s, nil
}

func (s *snapshot) checkEntry(se *snapEntry) error {
	e := &se.e
	switch {
	case se.stream >= uint32(len(s.streams)):
		return fmt.Errorf("stream %d of %d", se.stream, len(s.streams))
	case e.count == 0 || e.seq == 0 || e.last() < e.seq:
		return fmt.Errorf("sequence %d+%d", e.seq, e.count)
	case e.off < segHeaderSize || e.size < recHeadSize+envelope.HeaderSize+1 || int64(e.off)+int64(e.size) > s.length:
		return fmt.Errorf("record %d+%d outside the segment", e.off, e.size)
	case e.last() > s.streams[se.stream].last:
		return fmt.Errorf("sequence %d above the stream's last %d", e.last(), s.streams[se.stream].last)
	}
	return nil
}
