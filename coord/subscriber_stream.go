package coord

import (
	"context"
	"time"

	"github.com/syncmq/syncmq/proto/envelope"
	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

var timeNow = time.Now

// topicStream is one (publisher incarnation, topic) stream: the recovery
// state machine plus what the subscriber needs to act on its outputs.
type topicStream struct {
	s     *Subscriber
	ps    *pubState
	topic string
	st    *recovery.Stream
	reqID uint32 // id of the outstanding FETCH; older answers are stale
	time  int64  // publish time of the envelope being fed
	ended bool   // END named this topic
}

// stream returns the stream of topic, creating it to start at start.
func (s *Subscriber) stream(ps *pubState, topic string, start uint64) *topicStream {
	if ts := ps.streams[topic]; ts != nil {
		return ts
	}
	ts := &topicStream{s: s, ps: ps, topic: topic}
	st, err := recovery.NewStream(s.cfg.Stream, start, ts)
	if err != nil {
		panic(err) // the config was validated in NewSubscriber
	}
	ts.st = st
	ps.streams[topic] = ts
	return ts
}

// Deliver implements recovery.Handler.
func (ts *topicStream) Deliver(seq uint64, payload []byte, replayed bool) {
	ts.s.stats.received.Add(1)
	if replayed {
		ts.s.stats.recovered.Add(1)
	}
	ts.s.emit(Event{Type: EventMessage, Publisher: ts.ps.id, Epoch: ts.ps.epoch, Topic: ts.topic,
		Seq: seq, Payload: payload, Time: ts.time, Replay: replayed})
}

// Request implements recovery.Handler: queue a FETCH for the link's
// fetcher. Without a recovery endpoint the answer is "not held", so the
// gap is reported at once with the cause it was labelled with.
func (ts *topicStream) Request(from, to uint64) {
	s := ts.s
	s.reqID++
	ts.reqID = s.reqID
	s.repair[ts] = struct{}{}
	job := fetchJob{ts: ts, endpoint: ts.ps.recovery, req: fetch.Request{
		ID: ts.reqID, Publisher: ts.ps.id, Epoch: ts.ps.epoch, From: from, To: to, Topic: ts.topic,
	}}
	if job.endpoint == "" || ts.ps.link == nil {
		s.local = append(s.local, fetchResult{job: job, done: &fetch.Done{Status: fetch.StatusPartial}})
		return
	}
	select {
	case ts.ps.link.jobs <- job:
	default:
		s.local = append(s.local, fetchResult{job: job, code: fetch.CodeBusy})
	}
}

// Loss implements recovery.Handler.
func (ts *topicStream) Loss(from, to uint64, cause recovery.Cause) {
	s := ts.s
	s.stats.gaps.Add(1)
	s.stats.lost.Add(to - from + 1)
	s.evid.lost(&s.evidMu, cause, to-from+1)
	s.lg.Warn("messages lost", zap.String("publisher", ts.ps.id.Short()), zap.Uint64("epoch", ts.ps.epoch),
		zap.String("topic", ts.topic), zap.Uint64("from", from), zap.Uint64("to", to), zap.Stringer("cause", cause))
	s.emit(Event{Type: EventLoss, Publisher: ts.ps.id, Epoch: ts.ps.epoch, Topic: ts.topic, From: from, To: to, Cause: cause.String()})
}

// CaughtUp implements recovery.Handler.
func (ts *topicStream) CaughtUp(seq uint64) {
	delete(ts.s.repair, ts)
	ts.s.emit(Event{Type: EventCaughtUp, Publisher: ts.ps.id, Epoch: ts.ps.epoch, Topic: ts.topic, Seq: seq})
}

var _ recovery.Handler = (*topicStream)(nil)

type fetchJob struct {
	ts       *topicStream
	endpoint string
	req      fetch.Request
}

// fetchResult is one answer to a FETCH: a replayed envelope, the final
// DONE, an ERROR code, or a transport failure (code CodeBusy: retry).
type fetchResult struct {
	job  fetchJob
	msg  *envelope.Message
	done *fetch.Done
	code fetch.ErrorCode
}

// fetcher runs a link's FETCH requests one at a time.
func (s *Subscriber) fetcher(ctx context.Context, l *link) {
	for {
		var job fetchJob
		select {
		case job = <-l.jobs:
		case <-ctx.Done():
			return
		}
		s.fetch(ctx, l, job)
	}
}

func (s *Subscriber) fetch(ctx context.Context, l *link, job fetchJob) {
	c, err := l.recoveryClient(job.endpoint)
	if err != nil {
		s.post(fetchResult{job: job, code: fetch.CodeMalformed})
		return
	}
	req := fetch.EncodeRequest(nil, job.req)
	finished := false
	err = c.Stream(ctx, [][]byte{req}, func(reply [][]byte) (bool, error) {
		resp, err := fetch.DecodeResponse(reply)
		if err != nil {
			return true, err
		}
		if resp.ID != job.req.ID {
			return false, nil // an answer to an abandoned request
		}
		switch resp.Type {
		case fetch.TypeReplay:
			m := resp.Message
			s.post(fetchResult{job: job, msg: &m})
			return false, nil
		case fetch.TypeDone:
			d := resp.Done
			s.post(fetchResult{job: job, done: &d})
		case fetch.TypeError:
			s.post(fetchResult{job: job, code: resp.Error.Code})
		}
		finished = true
		return true, nil
	})
	if !finished && ctx.Err() == nil {
		s.lg.Debug("recovery fetch failed", zap.String("endpoint", job.endpoint), zap.Error(err))
		s.post(fetchResult{job: job, code: fetch.CodeBusy})
	}
}

func (s *Subscriber) onFetch(r fetchResult) {
	ts := r.job.ts
	now := timeNow()
	switch {
	case r.msg != nil:
		m := r.msg
		if m.Publisher != ts.ps.id || m.Epoch != ts.ps.epoch || string(m.Topic) != ts.topic {
			s.stats.malformed.Add(1)
			return
		}
		ts.time = m.Time
		for seq, payload := range m.Records() {
			ts.st.Replay(seq, payload, now)
		}
	case r.job.req.ID != ts.reqID:
		return // DONE or ERROR of an abandoned request
	case r.done != nil:
		ts.st.RepairDone(r.done.Status, r.done.FirstHeld, now)
	default:
		ts.st.RepairError(r.code, now)
	}
	s.checkEnd(ts.ps)
}
