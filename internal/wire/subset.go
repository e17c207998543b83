package wire

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"
)

// smallSubs is how many prefixes a subSet keeps in a plain slice, matched
// by scanning; beyond it, prefixes live in a map.
const smallSubs = 16

// subSet is the set of subscription prefixes of one connection. One
// goroutine (the connection's reader) changes it; any number match
// against it concurrently.
//
// Every change costs O(1) amortised (O(smallSubs) while small), so a peer
// sending n SUBSCRIBE and CANCEL messages costs O(n), not O(n²). Matching
// a topic costs one scan of at most smallSubs prefixes without a lock, or,
// beyond that, one map lookup of topic[:L] per distinct prefix length L
// present, under a read lock.
type subSet struct {
	// small holds every prefix while there are at most smallSubs and the
	// set never grew beyond; nil once the map took over.
	small atomic.Pointer[[][]byte]
	n     atomic.Int32

	mu   sync.RWMutex
	set  map[string]struct{}
	lens []int       // distinct prefix lengths in set, ascending
	byL  map[int]int // prefixes per length
}

func newSubSet() *subSet {
	s := &subSet{}
	s.small.Store(&[][]byte{})
	return s
}

// len returns the number of prefixes.
func (s *subSet) len() int { return int(s.n.Load()) }

// match reports whether any prefix is a prefix of topic.
func (s *subSet) match(topic []byte) bool {
	if small := s.small.Load(); small != nil {
		for _, p := range *small {
			if bytes.HasPrefix(topic, p) {
				return true
			}
		}
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, l := range s.lens {
		if l > len(topic) {
			break
		}
		if _, ok := s.set[string(topic[:l])]; ok {
			return true
		}
	}
	return false
}

// add inserts a copy of prefix and reports whether it was new.
func (s *subSet) add(prefix []byte) bool {
	if small := s.small.Load(); small != nil {
		old := *small
		for _, p := range old {
			if bytes.Equal(p, prefix) {
				return false
			}
		}
		if len(old) < smallSubs {
			next := make([][]byte, len(old), len(old)+1)
			copy(next, old)
			next = append(next, bytes.Clone(prefix))
			s.small.Store(&next)
			s.n.Add(1)
			return true
		}
		// Grow into the map, once.
		s.mu.Lock()
		s.set = make(map[string]struct{}, 2*smallSubs)
		s.byL = make(map[int]int)
		for _, p := range old {
			s.insertLocked(string(p))
		}
		s.mu.Unlock()
		s.small.Store(nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[string(prefix)]; ok {
		return false
	}
	s.insertLocked(string(prefix))
	s.n.Add(1)
	return true
}

func (s *subSet) insertLocked(p string) {
	s.set[p] = struct{}{}
	l := len(p)
	if s.byL[l] == 0 {
		i, _ := slices.BinarySearch(s.lens, l)
		s.lens = slices.Insert(s.lens, i, l)
	}
	s.byL[l]++
}

// remove deletes prefix and reports whether it was present.
func (s *subSet) remove(prefix []byte) bool {
	if small := s.small.Load(); small != nil {
		old := *small
		i := slices.IndexFunc(old, func(p []byte) bool { return bytes.Equal(p, prefix) })
		if i < 0 {
			return false
		}
		next := make([][]byte, 0, len(old)-1)
		next = append(append(next, old[:i]...), old[i+1:]...)
		s.small.Store(&next)
		s.n.Add(-1)
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[string(prefix)]; !ok {
		return false
	}
	delete(s.set, string(prefix))
	l := len(prefix)
	if s.byL[l]--; s.byL[l] == 0 {
		delete(s.byL, l)
		i, _ := slices.BinarySearch(s.lens, l)
		s.lens = slices.Delete(s.lens, i, i+1)
	}
	s.n.Add(-1)
	return true
}

// list returns a copy of the prefixes, in no particular order.
func (s *subSet) list() [][]byte {
	if small := s.small.Load(); small != nil {
		return slices.Clone(*small)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([][]byte, 0, len(s.set))
	for p := range s.set {
		out = append(out, []byte(p))
	}
	return out
}
