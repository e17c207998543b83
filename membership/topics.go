package membership

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strings"
)

// TopicsOverlap reports whether a publisher publishing pubTopics may send
// something a subscriber subscribed to subPrefixes receives: true when
// some publisher topic has some subscriber prefix as a prefix (ZeroMQ's
// subscription rule), or when either list is empty, which means all
// topics. A decoded Meta whose topic list was truncated has no Topics, so
// it overlaps everything.
func TopicsOverlap(pubTopics, subPrefixes []string) bool {
	if len(pubTopics) == 0 || len(subPrefixes) == 0 {
		return true
	}
	for _, t := range pubTopics {
		for _, p := range subPrefixes {
			if strings.HasPrefix(t, p) {
				return true
			}
		}
	}
	return false
}

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
