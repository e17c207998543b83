package wire

import "sync/atomic"

// Msg is an outgoing message that several connections may write. Its
// frames must not change while a Pub holds it: Send takes a reference for
// itself and one per connection queued, each writer drops its reference
// once the bytes are in its write buffer, and the last release hands the
// Msg to OnFree so the owner can reuse the buffers. That ordering is what
// makes buffer reuse safe, unlike zmq4's Send, which keeps the caller's
// slice.
//
// A Msg without OnFree whose frames never change may be sent any number
// of times, also concurrently, but by one Pub only: the Pub counts the
// bytes of the messages it holds (PubStats.QueuedBytes) by the references.
type Msg struct {
	Frames [][]byte
	// To, if not empty, limits Pub.Send to the connections whose class
	// (Pub.SetClass) it holds. Empty means every class.
	To ClassSet
	// OnFree, if set, is called once when the last reference is dropped.
	OnFree func(*Msg)
	refs   atomic.Int32
}

// Class groups a Pub's connections, so that Send can address one form of
// a message to some connections and another form to the rest. Every
// connection starts in class 0. There are 64 classes, 0 to 63.
type Class uint8

// ClassSet is a set of classes: bit c stands for class c.
type ClassSet uint64

// Classes returns the set of cs.
func Classes(cs ...Class) ClassSet {
	var s ClassSet
	for _, c := range cs {
		s |= 1 << (c & 63)
	}
	return s
}

// has reports whether s is empty (every class) or holds c.
func (s ClassSet) has(c Class) bool { return s == 0 || s&(1<<(c&63)) != 0 }

// size is the number of bytes the message occupies in a queue: its frames
// plus 9 bytes of framing per frame.
func (m *Msg) size() int {
	n := 0
	for _, f := range m.Frames {
		n += len(f) + 9
	}
	return n
}

// retain adds a reference and reports whether it was the first.
func (m *Msg) retain() bool { return m.refs.Add(1) == 1 }

// release drops one reference and reports whether it was the last; then
// OnFree has run and the caller must not touch m again.
func (m *Msg) release() bool {
	if m.refs.Add(-1) != 0 {
		return false
	}
	if m.OnFree != nil {
		m.OnFree(m)
	}
	return true
}
