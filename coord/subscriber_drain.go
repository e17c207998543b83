package coord

import (
	"time"

	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// An incarnation that ended without END (its publisher crashed) is not
// given up at once when the publisher comes back with a new epoch: a
// publisher with a journal (PublisherConfig.DataDir) still serves what its
// earlier epochs published. Each stream that had not reached its end asks
// for the record after the last one it has (a probe); the answer's DONE
// names the old epoch's final sequence, and the stream then repairs up to
// it like any gap, delivering the old epoch's rest before it is retired.
// A publisher without a journal answers "unknown epoch", and the stream
// gives up what it misses as before (cause publisher-restart, the unknown
// rest open-ended).

// drainOld keeps old repairing, or retires it if it has nothing to wait for.
func (s *Subscriber) drainOld(old *pubState, now time.Time) {
	if old.finished {
		s.retire(old)
		return
	}
	s.old = append(s.old, old)
	for _, ts := range old.streamsInOrder() {
		if !ts.ended && !ts.st.Finished() {
			s.probe(ts, now)
		}
	}
}

// probe asks where ts's epoch ended, by fetching the record after its last.
func (s *Subscriber) probe(ts *topicStream, now time.Time) {
	if ts.ps.recovery == "" || ts.ps.link == nil {
		s.abandonStream(ts, recovery.CausePublisherRestart, now)
		return
	}
	if ts.probeUntil.IsZero() {
		ts.probeUntil = now.Add(s.cfg.Stream.RepairTimeout)
	}
	s.reqID++
	ts.probeID, ts.probeRetryAt = s.reqID, time.Time{}
	next := ts.st.Next()
	job := fetchJob{ts: ts, probe: true, endpoint: ts.ps.recovery, req: fetch.Request{
		ID: ts.probeID, Publisher: ts.ps.id, Epoch: ts.ps.epoch, From: next, To: next, Topic: ts.topic,
	}}
	if !s.io.fetch(ts.ps.link, job) {
		s.local = append(s.local, fetchResult{job: job, code: fetch.CodeBusy})
	}
}

// onProbe acts on a probe's DONE or failure.
func (s *Subscriber) onProbe(r fetchResult, now time.Time) {
	ts := r.job.ts
	if r.job.req.ID != ts.probeID {
		return // abandoned meanwhile
	}
	switch {
	case r.done != nil && (r.done.Status == fetch.StatusUnknownEpoch || r.done.Status == fetch.StatusUnknownTopic):
		s.abandonStream(ts, recovery.CausePublisherRestart, now)
	case r.done != nil:
		ts.probeID, ts.ended = 0, true
		s.lg.Info("the restarted publisher still serves the old epoch; repairing its rest", zap.String("publisher", ts.ps.id.Short()),
			zap.Uint64("epoch", ts.ps.epoch), zap.String("topic", ts.topic), zap.Uint64("final", r.done.LastSeq))
		ts.st.End(r.done.LastSeq, now) // a gap up to the final sequence is requested as usual
	case now.After(ts.probeUntil):
		s.abandonStream(ts, recovery.CausePublisherRestart, now)
	default:
		ts.probeRetryAt = now.Add(s.cfg.Stream.RetryBackoff)
	}
}

// drainTick retries probes that failed and retires incarnations whose
// streams all reached their end.
func (s *Subscriber) drainTick(now time.Time) {
	keep := s.old[:0]
	for _, old := range s.old {
		done := true
		for _, ts := range old.streamsInOrder() {
			if ts.probeID != 0 && !ts.probeRetryAt.IsZero() && !now.Before(ts.probeRetryAt) {
				s.probe(ts, now)
			}
			if !ts.st.Finished() && !ts.abandoned {
				done = false
			}
		}
		if done {
			old.finished, old.ended = true, true
			s.retire(old)
			continue
		}
		keep = append(keep, old)
	}
	clear(s.old[len(keep):])
	s.old = keep
}
