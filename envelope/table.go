package envelope

import (
	"encoding/binary"
	"fmt"
)

// TopicSeq pairs a topic with a sequence number. HEARTBEAT and END
// payloads are tables of them: the last sequence published on each topic.
type TopicSeq struct {
	Topic string
	Seq   uint64
}

// MaxTableEntries is the most entries a topic table can hold.
const MaxTableEntries = 65535

// AppendTable appends the encoding of t: a 2-byte entry count, then per
// entry a 1-byte topic length, the topic, and an 8-byte sequence. Topics
// longer than 255 bytes cannot be encoded; callers keep topics within
// DefaultLimits.MaxTopic.
func AppendTable(dst []byte, t []TopicSeq) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(t)))
	for _, e := range t {
		dst = append(dst, byte(len(e.Topic)))
		dst = append(dst, e.Topic...)
		dst = binary.BigEndian.AppendUint64(dst, e.Seq)
	}
	return dst
}

// ParseTable decodes a topic table. It allocates; tables travel at
// heartbeat rate, not message rate.
func ParseTable(p []byte) ([]TopicSeq, error) {
	if err := checkTable(p); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	t := make([]TopicSeq, 0, n)
	for i := 0; i < n; i++ {
		l := int(p[0])
		t = append(t, TopicSeq{Topic: string(p[1 : 1+l]), Seq: binary.BigEndian.Uint64(p[1+l:])})
		p = p[1+l+8:]
	}
	return t, nil
}

func checkTable(p []byte) error {
	if len(p) < 2 {
		return fmt.Errorf("%w: %d bytes", ErrTable, len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	for i := 0; i < n; i++ {
		if len(p) < 1 {
			return fmt.Errorf("%w: entry %d of %d truncated", ErrTable, i+1, n)
		}
		l := int(p[0])
		if l == 0 || len(p) < 1+l+8 {
			return fmt.Errorf("%w: entry %d of %d truncated or empty", ErrTable, i+1, n)
		}
		if p[1] == 0 {
			return fmt.Errorf("%w: entry %d names a reserved topic", ErrTable, i+1)
		}
		p = p[1+l+8:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrTable, len(p))
	}
	return nil
}
