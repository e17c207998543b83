package coord

import (
	"bytes"
	"cmp"
	"slices"
)

// Maps iterate in a random order. Where the order of what the Subscriber
// does across publishers or streams shows (requests, probes, events), it
// goes by these orders instead, so that the same inputs always give the
// same outputs: a simulation seed then replays exactly, and so does a
// bug report.

// pubsInOrder returns the publisher incarnations ordered by publisher id,
// in dst.
func (s *Subscriber) pubsInOrder(dst []*pubState) []*pubState {
	dst = dst[:0]
	for _, ps := range s.pubs {
		dst = append(dst, ps)
	}
	slices.SortFunc(dst, func(a, b *pubState) int { return bytes.Compare(a.id[:], b.id[:]) })
	return dst
}

// streamsInOrder returns ps's streams ordered by topic.
func (ps *pubState) streamsInOrder() []*topicStream {
	out := make([]*topicStream, 0, len(ps.streams))
	for _, ts := range ps.streams {
		out = append(out, ts)
	}
	slices.SortFunc(out, func(a, b *topicStream) int { return cmp.Compare(a.topic, b.topic) })
	return out
}

// repairsInOrder returns the streams with a repair outstanding, ordered
// by publisher, epoch and topic, in dst.
func (s *Subscriber) repairsInOrder(dst []*topicStream) []*topicStream {
	dst = dst[:0]
	for ts := range s.repair {
		dst = append(dst, ts)
	}
	slices.SortFunc(dst, func(a, b *topicStream) int {
		if c := bytes.Compare(a.ps.id[:], b.ps.id[:]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ps.epoch, b.ps.epoch); c != 0 {
			return c
		}
		return cmp.Compare(a.topic, b.topic)
	})
	return dst
}
