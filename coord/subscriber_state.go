package coord

import (
	"maps"
	"slices"

	"github.com/syncmq/syncmq/envelope"
	"go.uber.org/zap"
)

// With a StateDir, the subscriber checkpoints the last sequence delivered
// (or reported lost) per (publisher, epoch, topic) after the Handler
// returned, once per pass of its loop (checkpoint.go). A restarted
// subscriber resumes from there: in the epoch it was following, each
// topic starts after its checkpoint and what it missed is repaired; an
// earlier epoch it had not finished is drained from the publisher's
// journal (subscriber_drain.go), and the new epoch starts at 1. Delivery
// is at least once: a crash after the Handler returned and before the
// checkpoint was written delivers that pass again, at most one envelope
// (one batch) per stream.

// markDelivered notes that ts delivered (or gave up) records in this pass.
func (s *Subscriber) markDelivered(ts *topicStream) {
	if s.ckpt != nil && !ts.dirty {
		ts.dirty = true
		s.dirty = append(s.dirty, ts)
	}
}

// flushCheckpoints writes the checkpoints of the streams that moved in
// this pass. A write error is logged once per interval; delivery goes on
// (a restart then repeats more).
func (s *Subscriber) flushCheckpoints() {
	if len(s.dirty) == 0 {
		return
	}
	if s.cfg.BeforeCheckpoint != nil {
		if err := s.cfg.BeforeCheckpoint(); err != nil {
			// Keep the streams dirty: the next pass tries again.
			s.rl.Warn("checkpoint", "BeforeCheckpoint failed; checkpoints not written", zap.Error(err))
			return
		}
	}
	for _, ts := range s.dirty {
		ts.dirty = false
		s.ckpt.note(ckptKey{pub: ts.ps.id, epoch: ts.ps.epoch, topic: ts.topic}, ts.handed)
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	if err := s.ckpt.flush(); err != nil {
		s.rl.Warn("checkpoint", "cannot write checkpoints; a restart would deliver more again", zap.Error(err))
	}
}

// resumePoints returns, for a first join to ps, where this subscriber
// stopped in ps's epoch (topic -> last delivered), and starts draining
// every earlier epoch of the same publisher it had not finished.
func (s *Subscriber) resumePoints(ps *pubState) map[string]uint64 {
	if s.ckpt == nil {
		return nil
	}
	eps := s.ckpt.epochs(ps.id)
	for _, epoch := range slices.Sorted(maps.Keys(eps)) {
		topics := eps[epoch]
		if !envelope.EpochAfter(ps.epoch, epoch) || s.draining(ps.id, epoch) {
			continue // this run follows that epoch already
		}
		ps.restarted = true // followed an earlier epoch: all of this one is after the join
		old := &pubState{id: ps.id, epoch: epoch, link: ps.link, recovery: ps.recovery, joined: true,
			streams: make(map[string]*topicStream)}
		for _, topic := range slices.Sorted(maps.Keys(topics)) {
			last := topics[topic]
			s.stream(old, topic, last+1, last)
		}
		s.lg.Info("resuming an earlier epoch from the checkpoint", zap.String("publisher", ps.id.Short()),
			zap.Uint64("epoch", epoch), zap.Int("topics", len(topics)))
		s.drainOld(old, s.io.now())
	}
	return eps[ps.epoch]
}

// draining reports whether this run still drains publisher id's epoch.
func (s *Subscriber) draining(id envelope.ID, epoch uint64) bool {
	for _, old := range s.old {
		if old.id == id && old.epoch == epoch {
			return true
		}
	}
	return false
}

// retireState forgets the checkpoints of an incarnation that is done.
func (s *Subscriber) retireState(id envelope.ID, epoch uint64) {
	if s.ckpt != nil {
		s.ckpt.forget(id, epoch)
	}
}
