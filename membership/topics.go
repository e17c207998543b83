package membership

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
)

// DigestTopics returns the FNV-1a 64-bit hash, big-endian, of topics
// sorted bytewise, each preceded by its length as a uvarint. It does not
// modify topics. Order does not matter; duplicates do.
func DigestTopics(topics []string) [8]byte {
	sorted := slices.Clone(topics)
	slices.Sort(sorted)
	h := fnv.New64a()
	var lenBuf [binary.MaxVarintLen64]byte
	for _, t := range sorted {
		h.Write(binary.AppendUvarint(lenBuf[:0], uint64(len(t))))
		h.Write([]byte(t))
	}
	var d [8]byte
	binary.BigEndian.PutUint64(d[:], h.Sum64())
	return d
}
