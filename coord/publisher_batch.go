package coord

import (
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/envelope"
)

// outMsg is one DATA batch: built by the core from Publish calls, finished
// and sent by run. It is pooled, and goes back to the pool only after
// every connection wrote it (wire.Msg.OnFree), so reuse cannot corrupt a
// message still queued for a slow subscriber.
type outMsg struct {
	wire.Msg
	b      envelope.Builder
	buf    []byte
	frames envelope.Frames
	topic  *topicState
	first  uint64 // sequence of the first record
	bytes  int    // payload bytes with their length prefixes, counted against MaxPending
}

// begin starts a batch of topic whose first record will have sequence first.
func (m *outMsg) begin(ts *topicState, id envelope.ID, epoch, first uint64) {
	m.topic, m.first, m.bytes = ts, first, 0
	m.b.Begin(m.buf, ts.name, envelope.Header{Kind: envelope.KindData, Publisher: id, Epoch: epoch, Seq: first})
}

// finish stamps the time the batch goes to the socket and completes its
// header and checksum. It runs outside the Publisher's lock.
func (m *outMsg) finish(now int64) {
	m.b.SetTime(now)
	m.frames, m.buf = m.b.Finish()
	m.Frames = m.frames[:]
}
