package journal

import "slices"

// EpochInfo describes one epoch (publisher incarnation) in the journal.
type EpochInfo struct {
	Epoch uint64
	// Active says this is the epoch being appended to.
	Active bool
	// Clean says the epoch was ended by Close or Begin (an end record),
	// not by a crash.
	Clean bool
	// Topics lists its streams in the order they first appeared.
	Topics []TopicInfo
}

// TopicInfo describes one (epoch, topic) stream.
type TopicInfo struct {
	Topic string
	// First and Last are the first and last sequences held; 0 if none.
	First, Last uint64
	// Final is the last sequence appended to the stream, held or not. For
	// an epoch that ended in a crash it is the last sequence of the last
	// valid record (a torn tail is cut off at Open).
	Final uint64
	// Batches and Records count what is held (damaged batches included).
	Batches int
	Records int64
	// Holes are the runs of sequences from First to Final that were
	// appended but cannot be read back (see Hole), in order.
	Holes []Hole
}

// Epochs lists the epochs the journal knows, oldest first: those that
// still hold a batch or an end record, and the active one. It allocates
// the result; it is meant for start-up and diagnosis, not per message.
func (j *Journal) Epochs() []EpochInfo {
	j.mu.RLock()
	defer j.mu.RUnlock()
	out := make([]EpochInfo, 0, len(j.idx.epochs))
	for _, ep := range j.idx.epochs {
		ei := EpochInfo{Epoch: ep.epoch, Active: ep == j.cur, Clean: ep.clean, Topics: make([]TopicInfo, 0, len(ep.order))}
		for _, s := range ep.order {
			ti := TopicInfo{Topic: s.topic, Final: s.last, Batches: len(s.held()), Records: s.records, Holes: slices.Clone(s.holes)}
			if h := s.held(); len(h) > 0 {
				ti.First, ti.Last = h[0].seq, h[len(h)-1].last()
			}
			ei.Topics = append(ei.Topics, ti)
		}
		out = append(out, ei)
	}
	return out
}

// Stats are the journal's gauges and counters. Counters count since Open.
type Stats struct {
	// Segments and Bytes are the segment files and their total size.
	Segments int
	Bytes    int64
	// Epochs, Batches and Records are what the index holds, damaged
	// batches included.
	Epochs  int
	Batches int64
	Records int64
	// Appended counts batches appended; AppendErrors failed Append and
	// AppendAll calls (refused batches included).
	Appended     uint64
	AppendErrors uint64
	// Evicted counts batches dropped by retention or the global budget;
	// SegmentsDeleted the segment files deleted.
	Evicted         uint64
	SegmentsDeleted uint64
	// Syncs counts fsyncs of segment data; SyncErrors failed ones.
	Syncs      uint64
	SyncErrors uint64
	// TornTails counts torn tails cut at Open, TornBytes their bytes: an
	// interrupted write, bytes after the last valid record of the last
	// segment, which had not been sealed, so nothing recorded anything
	// beyond them. They are not holes.
	TornTails uint64
	TornBytes int64
	// Damage, as opposed to an interrupted write: records the journal had
	// written and recorded that cannot be read back.
	//
	// Corrupt counts damaged regions skipped at Open (records that fail
	// their checks, damaged epoch-end records, bytes that do not verify at
	// the end of a sealed segment) and damaged batches found by Read.
	Corrupt uint64
	// ShortSegments counts segments found at Open shorter than their
	// index snapshot says (truncated after they were sealed), ShortBytes
	// the bytes missing. The batches listed there are holes.
	ShortSegments uint64
	ShortBytes    int64
	// Holes is the number of holes (see Hole) in the streams held now,
	// HoleRecords the sequences in them: records appended but unreadable,
	// which Read skips and a recovery server reports as lost.
	Holes       int
	HoleRecords int64
	// Scanned and Loaded count the segments Open indexed by scanning and
	// from a snapshot.
	Scanned, Loaded int
	// Failed says the journal refuses appends until reopened (ErrFailed).
	Failed bool
}

// Stats returns a snapshot of the gauges and counters.
func (j *Journal) Stats() Stats {
	j.mu.RLock()
	st := Stats{
		Segments: len(j.idx.segs),
		Bytes:    j.idx.bytes,
		Epochs:   len(j.idx.epochs),
		Batches:  j.idx.batch,
		Records:  j.idx.recs,

		Holes:       j.idx.holes,
		HoleRecords: j.idx.holeRecs,
	}
	j.mu.RUnlock()
	st.Appended = j.st.appended.Load()
	st.AppendErrors = j.st.appendErrors.Load()
	st.Evicted = j.st.evicted.Load()
	st.SegmentsDeleted = j.st.segDeleted.Load()
	st.Syncs = j.st.syncs.Load()
	st.SyncErrors = j.st.syncErrors.Load()
	st.TornTails = j.st.torn.Load()
	st.TornBytes = j.st.tornBytes.Load()
	st.Corrupt = j.st.corrupt.Load()
	st.ShortSegments = j.st.short.Load()
	st.ShortBytes = j.st.shortBytes.Load()
	st.Scanned, st.Loaded = j.st.scanned, j.st.loaded
	st.Failed = j.failedFlag.Load()
	return st
}

// KnowsEpoch reports whether the journal holds anything of epoch (a
// batch or its end record), or epoch is the active one. A recovery server
// tells "unknown epoch" from "unknown topic" with it.
func (j *Journal) KnowsEpoch(epoch uint64) bool {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.idx.epoch(epoch) != nil || (j.cur != nil && j.cur.epoch == epoch)
}
