package coord

import (
	"context"
	"strconv"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

var timeNow = time.Now

// aheadOfHistory reports whether a live record seq is one the history
// on the data connection brings again (catchUpTo): drop it.
func (ts *topicStream) aheadOfHistory(seq uint64) bool {
	return ts.catchUpTo > 0 && seq <= ts.catchUpTo && seq > ts.st.Next()
}

// topicStream is one (publisher incarnation, topic) stream: the recovery
// state machine plus what the subscriber needs to act on its outputs.
type topicStream struct {
	s     *Subscriber
	ps    *pubState
	topic string
	st    *recovery.Stream
	reqID uint32 // id of the outstanding FETCH; older answers are stale
	time  int64  // publish time of the envelope being fed
	// data is the DATA message being fed whose first record goes out with
	// it (Event.Data); nil otherwise.
	data  *envelope.Message
	heard uint64 // the highest sequence a heartbeat, ACK or END named: Stats.Lag
	ended bool   // END named this topic, a probe found its end, or it was abandoned
	// abandoned: its losses, known and unknown, were reported; nothing
	// more will be delivered.
	abandoned bool
	dirty     bool // delivered in this pass: checkpoint it (StateDir)
	// lostAfterJoin counts the records reported lost that were published
	// after the join (any cause but before-join): what BYE reports.
	lostAfterJoin uint64
	handed        uint64 // every sequence up to it was handed to the Handler, delivered or lost
	// catchUpTo is set while the publisher feeds this stream's history on
	// the data connection (the ACK granted the READY's from) and the
	// first replayed record has not come yet: the ACK's last sequence of
	// the topic. A live record ahead of the stream and at or below it was
	// published before the join and is dropped, not taken for a gap: the
	// history brings it again in order (or, if it no longer holds it, a
	// later gap reports it lost before the join). Records above it are
	// never dropped. A replayed record, END or disconnect clears it; a
	// heartbeat meanwhile was sent before the publisher took the
	// connection off the live stream, and is passed over.
	catchUpTo uint64

	// A stream of an incarnation that ended without END probes the
	// restarted publisher for its end (subscriber_drain.go).
	probeID      uint32 // id of the outstanding probe; 0 when none
	probeUntil   time.Time
	probeRetryAt time.Time
}

// startAt is where StartAt makes a new stream start, for a topic whose
// last sequence at the join was joined.
func (s *Subscriber) startAt(joined uint64) uint64 {
	switch s.cfg.StartAt {
	case StartAtJoin:
		return joined + 1
	case StartAtEarliest:
		return 1
	}
	n, _ := strconv.ParseUint(s.cfg.StartAt, 10, 64) // Validate checked it
	return n
}

// stream returns the stream of topic, creating it to start at start; joined
// is where the topic stood when this subscriber joined (losses up to it
// are before-join).
func (s *Subscriber) stream(ps *pubState, topic string, start, joined uint64) *topicStream {
	if ts := ps.streams[topic]; ts != nil {
		return ts
	}
	ts := &topicStream{s: s, ps: ps, topic: topic}
	st, err := recovery.NewStreamJoined(s.cfg.Stream, start, joined, ts)
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
	ts.s.stats.delivered(ts.time, len(payload), replayed)
	data := ts.data
	ts.data = nil
	if ts.s.emit(Event{Type: EventMessage, Publisher: ts.ps.id, Epoch: ts.ps.epoch, Topic: ts.topic,
		Seq: seq, Payload: payload, Time: ts.time, Replay: replayed, Data: data}) {
		ts.handed = seq
		ts.s.markDelivered(ts)
	}
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
	if ts.ps.link != nil && ts.ps.recoveryLink != nil && ts.ps.link != ts.ps.recoveryLink {
		// The incarnation moved to another endpoint (a failover to
		// another relay) whose ACK has not said yet where it repairs; the
		// recovery endpoint known is the old one's, likely gone with it.
		// Ask again after the backoff, once the ACK is in.
		s.local = append(s.local, fetchResult{job: job, code: fetch.CodeBusy})
		return
	}
	if job.endpoint == "" || ts.ps.link == nil {
		s.local = append(s.local, fetchResult{job: job, done: &fetch.RangeDone{Status: fetch.StatusPartial}})
		return
	}
	if !s.io.fetch(ts.ps.link, job) {
		s.local = append(s.local, fetchResult{job: job, code: fetch.CodeBusy})
	}
}

// Loss implements recovery.Handler.
func (ts *topicStream) Loss(from, to uint64, cause recovery.Cause) {
	s := ts.s
	s.stats.lossEvents.Add(1)
	s.stats.lost.Add(to - from + 1)
	if cause != recovery.CauseBeforeJoin {
		ts.lostAfterJoin += to - from + 1
	}
	s.evid.lost(&s.evidMu, cause, to-from+1)
	s.lg.Warn("messages lost", zap.String("publisher", ts.ps.id.Short()), zap.Uint64("epoch", ts.ps.epoch),
		zap.String("topic", ts.topic), zap.Uint64("from", from), zap.Uint64("to", to), zap.Stringer("cause", cause))
	if s.emit(Event{Type: EventLoss, Publisher: ts.ps.id, Epoch: ts.ps.epoch, Topic: ts.topic, From: from, To: to, Cause: cause.String()}) {
		ts.handed = to
		s.markDelivered(ts)
	}
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
	probe    bool // asks where an old epoch ended, see subscriber_drain.go
}

// fetchResult is one answer to a FETCH: a replayed envelope, the final
// DONE, an ERROR code, a transport failure (code CodeBusy: retry), or
// word that the request is being answered (progress).
type fetchResult struct {
	job      fetchJob
	msg      *envelope.Message
	done     *fetch.RangeDone
	code     fetch.ErrorCode
	progress bool
}

// fetchBatch bounds one FETCH_MANY: the entries and bytes the codec
// allows, and the sequences a publisher serves per request by default
// (PublisherConfig.MaxReplayRange; a smaller limit answers "range too
// large" and the streams halve their ranges).
const fetchBatchSequences = 65536

// fetcher runs a link's repairs one request at a time, packing every
// request queued meanwhile for one publisher incarnation into a single
// FETCH_MANY, so a reconnect or a thousand topics cost one round trip.
func (s *Subscriber) fetcher(ctx context.Context, l *link) {
	var queued []fetchJob
	for {
		if len(queued) == 0 {
			select {
			case job := <-l.jobs:
				queued = append(queued, job)
			case <-ctx.Done():
				return
			}
		}
	drain:
		for len(queued) < fetch.MaxManyEntries {
			select {
			case job := <-l.jobs:
				queued = append(queued, job)
			default:
				break drain
			}
		}
		var batch []fetchJob
		batch, queued = packFetch(queued, l.singleFetch.Load())
		s.fetch(ctx, l, batch)
	}
}

// packFetch takes from queued the jobs one request can carry: those of
// the first job's endpoint and publisher incarnation, within the
// FETCH_MANY limits; only the first when single.
func packFetch(queued []fetchJob, single bool) (batch, rest []fetchJob) {
	first := queued[0]
	size, seqs := fetch.ManyRequestHeaderSize, uint64(0)
	for _, j := range queued {
		fits := !single || len(batch) == 0
		if fits && len(batch) > 0 {
			fits = j.endpoint == first.endpoint && j.req.Publisher == first.req.Publisher && j.req.Epoch == first.req.Epoch &&
				len(batch) < fetch.MaxManyEntries && size+fetch.EntrySize(j.req.Topic) <= fetch.MaxManyRequestSize &&
				seqs+j.req.Count() <= fetchBatchSequences
		}
		if fits {
			batch = append(batch, j)
			size += fetch.EntrySize(j.req.Topic)
			seqs += j.req.Count()
		} else {
			rest = append(rest, j)
		}
	}
	return batch, rest
}

// fetch sends one FETCH (a batch of one job) or FETCH_MANY and routes
// the answer to run: each REPLAY to the job of its topic, each DONE or
// DONE_MANY entry to its job, an ERROR to every job. A publisher that does
// not know FETCH_MANY (protocol 1.0) answers ERROR malformed; the link then
// sends single FETCHes.
func (s *Subscriber) fetch(ctx context.Context, l *link, batch []fetchJob) {
	a := newFetchAnswer(batch)
	c, err := l.recoveryClient(batch[0].endpoint)
	if err != nil {
		for _, job := range batch {
			s.post(fetchResult{job: job, code: fetch.CodeMalformed})
		}
		return
	}
	single := l.singleFetch.Load()
	finished := false
	err = c.Stream(ctx, [][]byte{a.request()}, func(reply [][]byte) (bool, error) {
		st, err := a.next(reply, time.Now(), l)
		if err != nil {
			return true, err
		}
		if st.replay != nil && !s.replayed(l, *st.replay, st.msg) {
			return true, s.ctx.Err()
		}
		for _, r := range st.results {
			s.post(r)
		}
		finished = st.finished
		return st.finished, nil
	})
	if !single && l.singleFetch.Load() {
		s.lg.Info("recovery endpoint does not know FETCH_MANY; repairing one topic per request", zap.String("endpoint", batch[0].endpoint))
	}
	if !finished && ctx.Err() == nil {
		s.lg.Debug("recovery fetch failed", zap.String("endpoint", batch[0].endpoint), zap.Error(err))
		for _, r := range a.failed() {
			s.post(r)
		}
	}
}

// replayResult is a REPLAY handed from a link's fetcher to run.
type replayResult struct {
	fetchResult
	m         envelope.Message
	processed chan struct{} // run is done with m
}

// replayed hands run a REPLAY whose frames alias the recovery client's
// buffer and waits until run has fed its records to the stream (which
// delivers them or copies those it holds), so that the client may read
// the next reply into the same buffer: replays allocate nothing and
// copy no record on their way. It reports false if the Subscriber is
// closing; the caller must then stop reading.
func (s *Subscriber) replayed(l *link, job fetchJob, m *envelope.Message) bool {
	r := &l.replay
	r.m = *m
	r.fetchResult = fetchResult{job: job, msg: &r.m}
	select {
	case s.results <- r:
	case <-s.ctx.Done():
		return false
	}
	select {
	case <-r.processed:
		return true
	case <-s.ctx.Done():
		// run may still be reading m: the caller stops reading, so the
		// buffer is not reused.
		return false
	}
}

func (s *Subscriber) onFetch(r fetchResult) {
	ts := r.job.ts
	now := s.io.now()
	if r.job.probe && r.msg == nil {
		if !r.progress {
			s.onProbe(r, now)
		}
		return
	}
	switch {
	case r.msg != nil:
		m := r.msg
		if m.Publisher != ts.ps.id || m.Epoch != ts.ps.epoch || string(m.Topic) != ts.topic {
			s.stats.malformed.Add(1)
			return
		}
		ts.ps.lastHeard = now // a publisher that answers is not gone
		ts.time = m.Time
		for seq, payload := range m.Records() {
			ts.st.Replay(seq, payload, now)
		}
	case r.job.req.ID != ts.reqID:
		return // an answer to an abandoned request
	case r.progress:
		ts.st.Progress(now)
		return
	case r.done != nil:
		ts.st.RepairDone(r.done.Status, r.done.FirstHeld, now)
	default:
		ts.st.RepairError(r.code, now)
	}
	s.checkEnd(ts.ps)
}
