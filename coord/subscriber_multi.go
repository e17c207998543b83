package coord

import (
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"
)

// forms lists the data message forms beyond protocol 1.0 this subscriber
// reads, for its READY: the publisher sends MULTI messages, records of
// several topics in one, on a connection that accepts them.
func (s *Subscriber) forms() []string {
	if s.cfg.dataOnly {
		return nil
	}
	return []string{handshake.FormMulti}
}

// multiScratch is what processMulti reuses from message to message.
type multiScratch struct {
	table   []envelope.MultiTopic
	streams []*topicStream
	next    []uint64
}

// processMulti feeds every record of a MULTI message to its topic's
// stream, in the message's order, which is the order the publisher
// accepted them.
func (s *Subscriber) processMulti(ps *pubState, m *envelope.Message, now time.Time) {
	x := &s.multi
	x.table = m.MultiTopics(x.table[:0])
	clear(x.streams)
	x.streams, x.next = x.streams[:0], x.next[:0]
	for _, e := range x.table {
		x.streams = append(x.streams, s.dataStream(ps, e.Topic))
		x.next = append(x.next, e.First)
	}
	if x.inOrder() {
		// Every record is delivered in turn: the message goes with the
		// first (Event.Data).
		x.streams[m.MultiEntry(0)].data = m
	}
	for e, payload := range m.MultiRecords() {
		seq := x.next[e]
		x.next[e]++
		if ts := x.streams[e]; ts != nil && !ts.aheadOfHistory(seq) {
			ts.time = m.Time
			ts.st.Live(seq, payload, now)
		}
	}
	for _, ts := range x.streams {
		if ts != nil {
			ts.data = nil
		}
	}
}

// inOrder reports whether the MULTI whose table processMulti read goes
// to the application whole and in order: every topic is wanted, not
// catching up, and starts at its stream's next sequence with nothing
// held, each named once.
func (x *multiScratch) inOrder() bool {
	if len(x.streams) < 2 {
		return false
	}
	for i, ts := range x.streams {
		if ts == nil || ts.catchUpTo != 0 || !ts.st.InOrder(x.next[i]) {
			return false
		}
		for _, o := range x.streams[:i] {
			if o == ts {
				return false
			}
		}
	}
	return true
}

// dataStream returns the stream that records of topic feed, creating it;
// nil when the subscriber does not want the topic. It does not allocate
// for a topic it knows.
func (s *Subscriber) dataStream(ps *pubState, topic []byte) *topicStream {
	if ts := ps.streams[string(topic)]; ts != nil {
		return ts
	}
	if !s.wantsBytes(topic) {
		return nil
	}
	return s.stream(ps, string(topic), 1, 0)
}

// wantsBytes is wants for a topic in a message.
func (s *Subscriber) wantsBytes(topic []byte) bool {
	if len(s.cfg.Subscribe) == 0 {
		return true
	}
	for _, p := range s.cfg.Subscribe {
		if len(topic) >= len(p) && string(topic[:len(p)]) == p {
			return true
		}
	}
	return false
}
