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
	// OnFree, if set, is called once when the last reference is dropped.
	OnFree func(*Msg)
	refs   atomic.Int32
}

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
