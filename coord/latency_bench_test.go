package coord

import (
	"testing"
	"time"
)

// BenchmarkDeliver measures the per-record cost of the delivery path
// with the byte and latency tally (what Deliver does) against the same
// path without it (what Deliver did before), side by side: batches of
// 1000 records, one receive-time read per batch.
func BenchmarkDeliver(b *testing.B) {
	payload := make([]byte, 64)
	for _, variant := range []struct {
		name    string
		deliver func(ts *topicStream, seq uint64)
	}{
		{"tally", func(ts *topicStream, seq uint64) { ts.Deliver(seq, payload, false) }},
		{"baseline", func(ts *topicStream, seq uint64) {
			ts.s.stats.received.Add(1)
			ts.s.emit(Event{Type: EventMessage, Publisher: ts.ps.id, Epoch: ts.ps.epoch, Topic: ts.topic,
				Seq: seq, Payload: payload, Time: ts.time})
		}},
	} {
		b.Run(variant.name, func(b *testing.B) {
			var got int
			s := &Subscriber{cfg: SubscriberConfig{Handler: func(ev Event) { got += len(ev.Payload) }}}
			ts := &topicStream{s: s, ps: &pubState{}, topic: "t"}
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			start := time.Now().UnixNano()
			for i := range b.N {
				if i%1000 == 0 {
					ts.time = start + int64(i)
				}
				variant.deliver(ts, uint64(i+1))
			}
			s.stats.flushTally()
		})
	}
}
