package journal

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
	// Batches and Records count what is held.
	Batches int
	Records int64
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
			ti := TopicInfo{Topic: s.topic, Final: s.last, Batches: len(s.held()), Records: s.records}
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
	// Epochs, Batches and Records are what the index holds.
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
	// TornTails counts torn tails cut at Open, TornBytes their bytes.
	TornTails uint64
	TornBytes int64
	// Corrupt counts damaged regions skipped at Open and damaged batches
	// skipped by Read.
	Corrupt uint64
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
