package envelope

import (
	"encoding/binary"
	"fmt"
)

// Loss is the payload of a LOSS message: sequences From..To of Topic will
// never be published, for the reason Cause names (a loss cause such as
// "beyond-retention", as a subscriber reports it).
type Loss struct {
	Topic    string
	From, To uint64
	Cause    string
}

// MaxLossCause bounds the cause name a LOSS carries.
const MaxLossCause = 64

// AppendLoss appends l as a LOSS payload to dst:
// [1-byte topic length L][L topic bytes][8-byte From][8-byte To]
// [1-byte cause length C][C cause bytes]. It does not check l; ParseLoss
// does.
func AppendLoss(dst []byte, l Loss) []byte {
	dst = append(dst, byte(len(l.Topic)))
	dst = append(dst, l.Topic...)
	dst = binary.BigEndian.AppendUint64(dst, l.From)
	dst = binary.BigEndian.AppendUint64(dst, l.To)
	dst = append(dst, byte(len(l.Cause)))
	return append(dst, l.Cause...)
}

// ParseLoss decodes a LOSS payload. The topic is 1..255 bytes not
// starting with a zero byte, 1 <= From <= To, the cause 1..MaxLossCause
// bytes of printable ASCII, and nothing follows it. Errors wrap ErrLoss.
func ParseLoss(p []byte) (Loss, error) {
	var l Loss
	if len(p) < 1 {
		return l, fmt.Errorf("%w: empty", ErrLoss)
	}
	n := int(p[0])
	if n == 0 || len(p) < 1+n+16+1 {
		return l, fmt.Errorf("%w: %d bytes for a topic of %d", ErrLoss, len(p), n)
	}
	topic := p[1 : 1+n]
	if topic[0] == 0 {
		return l, fmt.Errorf("%w: topic %q is reserved", ErrLoss, topic)
	}
	q := p[1+n:]
	l.From, l.To = binary.BigEndian.Uint64(q), binary.BigEndian.Uint64(q[8:])
	if l.From == 0 || l.To < l.From {
		return l, fmt.Errorf("%w: range %d-%d", ErrLoss, l.From, l.To)
	}
	q = q[16:]
	c := int(q[0])
	if c == 0 || c > MaxLossCause || len(q) != 1+c {
		return l, fmt.Errorf("%w: cause of %d bytes in %d", ErrLoss, c, len(q)-1)
	}
	for _, b := range q[1:] {
		if b <= ' ' || b > '~' {
			return l, fmt.Errorf("%w: cause %q is not printable ASCII", ErrLoss, q[1:])
		}
	}
	l.Topic, l.Cause = string(topic), string(q[1:])
	return l, nil
}
