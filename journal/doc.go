// Package journal is the publisher's durable history: a segmented,
// append-only log of the DATA envelopes it publishes, kept in one
// directory per publisher id across its epochs (incarnations), so that
// gaps can be repaired after the publisher restarted, and after a crash.
//
// The publisher appends every batch before it hands the batch to its PUB
// socket, so whatever any subscriber could have seen, the journal has.
// docs/durability.md describes the on-disk format byte by byte, the fsync
// modes and what each guarantees, retention, what happens on each fault,
// and the measurements.
//
// # Files
//
//	dir/JOURNAL          publisher id and the highest epoch begun
//	dir/LOCK             flock'ed while a Journal has the directory open
//	dir/0000000001.log   segments: a header, then records
//	dir/0000000001.idx   index snapshot of a sealed segment (a cache)
//
// A record is one envelope exactly as sent (topic, 56-byte header,
// payload) behind a 16-byte head with a CRC-32C; the payload is covered by
// the envelope's own CRC-32C. The index of every batch held (32 bytes per
// batch) is kept in memory, rebuilt at Open from the snapshots and, for
// segments without a valid one, by scanning them.
//
// # Use by the publisher
//
// At start, with the publisher's configured id (or none: the journal's
// own, see Config.Publisher):
//
//	j, err := journal.Open(dir, cfg)             // recovers; ErrPublisher, ErrLocked, ErrDirectory
//	epoch := j.NextEpoch(uint64(time.Now().UnixMicro()))
//	err = j.Begin(epoch)                         // the incarnation's epoch; above every earlier one
//
// In the sender, for the batches of one pass, before sending any of them:
//
//	n, err := j.AppendAll(frames)                // or j.Append(m.frames) per batch
//	// send frames[:n]; frames[n:] are not in the journal and must not be
//	// sent yet. A full disk (errors.Is(err, syscall.ENOSPC)) leaves the
//	// journal usable: retry later, or stop. ErrFailed (a failed fsync or
//	// undo) needs a reopen; until then nothing more can be journaled.
//
// In the recovery server, for FETCH(epoch, topic, from, to):
//
//	rng, err := j.Read(epoch, topic, from, to, func(b journal.Batch) bool {
//		for seq, payload := range b.Records(from, to) { ... }   // trims the batch to the range
//		return true                                              // false stops
//	})
//	// rng.Known false: unknown stream. rng.First > from: the start is gone
//	// (partial). rng.Closed: an earlier epoch, rng.Final its final sequence,
//	// rng.Clean whether it ended cleanly or crashed.
//
// At shutdown, after END was sent: j.Close(), which ends the epoch cleanly.
// Stats() feeds the publisher's stats; Epochs() lists what is held.
//
// # Concurrency
//
// One writer at a time (Append, AppendAll, Begin, Sync and Close serialise)
// and any number of concurrent readers (Read, Epochs, Stats). Readers copy
// index entries under a read lock, a few hundred at a time, and read the
// files without it, so neither side waits for the other's disk I/O. A
// background goroutine syncs the active segment (SyncInterval), finishes
// sealed segments (fsync, close, snapshot) and applies MaxAge; Close stops
// it and waits for it.
package journal
