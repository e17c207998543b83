package journal

import "github.com/syncmq/syncmq/envelope"

// Format constants for tests that damage files at known places.
const (
	SegHeaderSize = segHeaderSize
	RecHeadSize   = recHeadSize
)

// Crash abandons the journal the way a killed process does: no end
// record, no sync, no snapshot; the files keep what was written (as the
// page cache would) and the lock is released.
func (j *Journal) Crash() {
	if !j.closed.CompareAndSwap(false, true) {
		return
	}
	j.stopBackground()
	defer j.tickMu.Unlock()
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.actFile != nil {
		j.actFile.Close()
	}
	j.lock.Close()
}

// DecodeRecord exposes the record decoder to the fuzz target.
func DecodeRecord(b []byte, pub envelope.ID) (typ byte, size int, err error) {
	r, n, err := decodeRecord(b, pub)
	if err == nil && r.typ == recEnd {
		r.endEntries(func([]byte, uint64) {})
	}
	return r.typ, n, err
}

// EncodeBatchRecord exposes the record encoder to the fuzz target.
func EncodeBatchRecord(f envelope.Frames) []byte { return appendBatchRecord(nil, f[0], f[1], f[2]) }

// EncodeEndRecord encodes an end record listing topics with finals.
func EncodeEndRecord(epoch uint64, t int64, topics []string, finals []uint64) []byte {
	ents := make([]endEntry, len(topics))
	for i := range topics {
		ents[i] = endEntry{topic: topics[i], final: finals[i]}
	}
	return appendEndRecord(nil, epoch, t, ents)
}

// DecodeSnapshot exposes the snapshot decoder to the fuzz target.
func DecodeSnapshot(b []byte) error { _, err := decodeSnapshot(b); return err }

// DecodeMeta exposes the JOURNAL file decoder to the fuzz target.
func DecodeMeta(b []byte) error { _, err := decodeMeta(b); return err }

// EncodeSegmentHeader encodes the header of segment id.
func EncodeSegmentHeader(pub envelope.ID, id uint32) []byte { return appendSegHeader(nil, pub, id) }
