package wire

import "sync/atomic"

// Msg is an outgoing message that several connections may write. Its
// frames must not change while the Pub holds it: Send takes one reference
// per connection queued, each writer drops its reference once the bytes
// are in its write buffer, and the last Release hands the Msg to OnFree so
// the owner can reuse the buffers. That ordering is what makes buffer
// reuse safe, unlike zmq4's Send, which keeps the caller's slice.
type Msg struct {
	Frames [][]byte
	// OnFree, if set, is called once when the last reference is dropped.
	OnFree func(*Msg)
	refs   atomic.Int32
}

// size is the number of payload bytes the message occupies in a queue.
func (m *Msg) size() int {
	n := 0
	for _, f := range m.Frames {
		n += len(f) + 9
	}
	return n
}

func (m *Msg) retain() { m.refs.Add(1) }

// release drops one reference.
func (m *Msg) release() {
	if m.refs.Add(-1) == 0 && m.OnFree != nil {
		m.OnFree(m)
	}
}
