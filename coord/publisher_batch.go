package coord

import (
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
)

// Connection classes of the PUB socket (wire.Class): which form of a
// batch of several topics a connection gets. A batch of one topic is a
// DATA message and goes to both.
const (
	// classData connections get DATA messages only: protocol 1.0
	// subscribers, those whose READY did not accept MULTI or whose
	// subscriptions do not cover every topic, and connections that have
	// not joined yet.
	classData wire.Class = 0
	// classMulti connections get a batch of several topics as one MULTI.
	classMulti wire.Class = 1
)

// outMsg is one batch: built by the core from Publish calls, finished and
// sent by run. It is pooled, and goes back to the pool only after every
// connection wrote it (wire.Msg.OnFree), so reuse cannot corrupt a
// message still queued for a slow subscriber.
//
// While connections on the MULTI form are joined, a batch takes records
// of every topic in publish order and is sent as one MULTI to them; a
// batch that ends up with one topic is a plain DATA message for everyone.
// Connections on the DATA form get a MULTI's records as DATA messages,
// one per run of consecutive records of a topic (dataRuns), so each sees
// the publisher's order across topics either way.
type outMsg struct {
	wire.Msg
	b      envelope.BatchBuilder
	rec    []byte // records frame (a DATA payload), reused
	meta   []byte // topic or prefix, header, MULTI index, reused
	frames [][]byte
	topics []*topicState // the topic of each table entry
	gen    uint64        // the core's number for this batch (topicState.entryGen)
	index  int           // bytes a MULTI index would take
	bytes  int           // payload bytes with their length prefixes, counted against MaxPending
	// toData is set at take when connections on the DATA form take data:
	// a MULTI then also goes to them as DATA runs.
	toData bool
	// journaled counts the runs a journal appended before it failed
	// (see journalStore.keep); zero otherwise.
	journaled int

	runs    []outRun // a MULTI's runs as DATA messages, by prepareRuns
	runHdrs []byte   // their headers
}

// outRun is one run of a finished batch as the DATA message that carries
// it alone.
type outRun struct {
	topic   *topicState
	seq     uint64
	count   int
	header  []byte
	payload []byte
}

// begin starts an empty batch numbered gen.
func (m *outMsg) begin(gen uint64, id envelope.ID, epoch uint64) {
	m.gen, m.bytes, m.index, m.toData, m.journaled = gen, 0, 2, false, 0
	clear(m.topics)
	m.topics = m.topics[:0]
	clear(m.runs)
	m.runs = m.runs[:0]
	m.b.Reset(m.rec, m.meta, envelope.Header{Publisher: id, Epoch: epoch})
}

// beginData makes m, numbered gen, the DATA or MULTI message dm as it
// arrived, whose table entries are the topics tss: a relay forwarding an
// upstream message whole (Publisher.Forward). It takes no more records;
// finish keeps dm's time and checksum.
func (m *outMsg) beginData(gen uint64, tss []*topicState, dm *envelope.Message) {
	m.gen, m.index, m.toData, m.journaled = gen, 2, false, 0
	clear(m.topics)
	m.topics = append(m.topics[:0], tss...)
	clear(m.runs)
	m.runs = m.runs[:0]
	m.b.ResetData(m.rec, m.meta, dm)
	m.bytes = m.b.Size()
	for i, ts := range tss {
		ts.entryGen, ts.entry = gen, i
	}
}

// entry returns ts's table entry in this batch, or -1.
func (m *outMsg) entry(ts *topicState) int {
	if ts.entryGen == m.gen {
		return ts.entry
	}
	return -1
}

// add appends a record of ts, whose sequence is ts.seq+1, adding ts to
// the table if it is new to the batch.
func (m *outMsg) add(ts *topicState, payload []byte) {
	e := m.entry(ts)
	if e < 0 {
		e = m.b.AddTopic(ts.name, ts.seq+1)
		ts.entryGen, ts.entry = m.gen, e
		m.topics = append(m.topics, ts)
		m.index += envelope.MultiEntrySize(ts.name)
	}
	m.b.Add(e, payload)
	m.index += 2
	m.bytes += len(payload) + 4
}

// multi reports whether the batch holds records of several topics.
func (m *outMsg) multi() bool { return m.b.Topics() > 1 }

// finish stamps the time the batch goes to the socket (a batch forwarded
// whole keeps its own) and completes its frames. It runs outside the
// Publisher's lock.
func (m *outMsg) finish(now int64) {
	m.b.SetTime(now)
	m.frames, m.rec, m.meta = m.b.Finish(m.frames)
	m.Frames = m.frames
	m.To = liveClasses // not to connections catching up (publisher_catchup.go)
	if m.multi() {
		m.To = wire.Classes(classMulti)
	}
}

// eachRun calls fn with every run of the finished batch as a DATA
// message, in publish order: the batch itself when it holds one topic.
func (m *outMsg) eachRun(fn func(r *outRun)) {
	if !m.multi() {
		_, first, n := m.b.Topic(0)
		// Kept in m: a local whose address fn gets would be allocated.
		m.runs = append(m.runs[:0], outRun{topic: m.topics[0], seq: first, count: n, header: m.frames[1], payload: m.frames[2]})
		fn(&m.runs[0])
		return
	}
	m.prepareRuns()
	for i := range m.runs {
		fn(&m.runs[i])
	}
}

// runCount is the number of runs eachRun visits.
func (m *outMsg) runCount() int {
	if !m.multi() {
		return 1
	}
	m.prepareRuns()
	return len(m.runs)
}

// prepareRuns computes a MULTI's runs as DATA messages, once.
func (m *outMsg) prepareRuns() {
	if len(m.runs) > 0 {
		return
	}
	n := 0
	m.b.EachRun(func(envelope.Run) bool { n++; return true })
	const hs = envelope.HeaderSize
	if cap(m.runHdrs) < n*hs {
		m.runHdrs = make([]byte, n*hs)
	}
	m.runHdrs = m.runHdrs[:n*hs]
	m.b.EachRun(func(r envelope.Run) bool {
		i := len(m.runs)
		h := m.runHdrs[i*hs : (i+1)*hs : (i+1)*hs]
		m.runs = append(m.runs, outRun{topic: m.topics[r.Entry], seq: r.Seq, count: r.Count, header: h, payload: m.b.RunData(h, r)})
		return true
	})
}

// setData makes m the DATA message of run r, copying it: how a MULTI
// reaches connections on the DATA form.
func (m *outMsg) setData(r *outRun) {
	m.meta = append(append(m.meta[:0], r.topic.name...), r.header...)
	m.rec = append(m.rec[:0], r.payload...)
	tl := len(r.topic.name)
	m.frames = append(m.frames[:0], m.meta[:tl:tl], m.meta[tl:], m.rec)
	m.Frames, m.To = m.frames, wire.Classes(classData)
	clear(m.topics)
	m.topics, m.runs, m.bytes = m.topics[:0], m.runs[:0], 0
}
