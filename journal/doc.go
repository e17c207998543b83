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
//	dir/LOCK             locked (flock) while a Journal has the directory open
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
//	// (partial). rng.Hole: the first run of the range that was appended
//	// but cannot be read back (damage): report it lost. rng.Closed: an
//	// earlier epoch, rng.Final its final sequence, rng.Clean whether it
//	// ended cleanly or crashed.
//
// At shutdown, after END was sent: j.Close(), which ends the epoch cleanly.
// Stats() feeds the publisher's stats; Epochs() lists what is held.
//
// # Damage and interrupted writes
//
// Open tells two things apart. An interrupted write is what a crash
// leaves at the end of the segment that was being written: bytes after
// its last valid record, which nothing recorded; they are cut off
// (Stats.TornTails) and the epoch's final sequence is its last valid
// record. Damage is the loss of records the journal had written and
// recorded: a sealed segment shorter than its index snapshot says
// (Stats.ShortSegments), records that fail their checksums at Open or in
// a Read (Stats.Corrupt), sequences missing between held batches or
// after the newest one up to the final sequence a snapshot or the epoch's
// end record names. The snapshot and the end record are trusted over the
// file: final sequences stay what was recorded, and every run of
// sequences that cannot be read back is a Hole, reported by Read
// (Range.Hole), Epochs (TopicInfo.Holes) and Stats (Holes, HoleRecords),
// so that a recovery server reports it lost instead of skipping it.
//
// # File system, clock and background work
//
// Every file operation goes through Config.FS (OSFS, the real file
// system, when nil), and the clock is Config.Now (time.Now when nil). A
// background goroutine syncs the active segment (SyncInterval), finishes
// sealed segments (fsync, close, snapshot) and applies MaxAge; Close stops
// it and waits for it. With Config.ManualTick there is none: the caller
// calls Tick(now) to do that work. A deterministic simulation runs a
// journal on the simulated disk of internal/simdisk with its own clock
// and ManualTick, single-threaded, with no goroutine of the journal's:
//
//	cfg := journal.DefaultConfig()
//	cfg.FS, cfg.Now, cfg.ManualTick = disk, sim.Now, true
//	j, err := journal.Open("/pub", cfg)
//	... j.Append(f) ... j.Tick(sim.Now()) ...
//	disk.Crash(simdisk.RandomPowerLoss(rng))    // the journal object is dead; Open again
//
// # Concurrency
//
// One writer at a time (Append, AppendAll, Begin, Sync and Close serialise)
// and any number of concurrent readers (Read, Epochs, Stats). Readers copy
// index entries under a read lock, a few hundred at a time, and read the
// files without it, so neither side waits for the other's disk I/O. Tick
// may be called concurrently with the others.
package journal
