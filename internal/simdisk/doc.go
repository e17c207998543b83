// Package simdisk is a deterministic in-memory file system that
// implements journal.FS, for running the journal and the subscriber's
// checkpoints in a simulation: the same calls give the same results, it
// starts no goroutine and reads no clock, and everything it iterates
// (directory listings, crash processing, random choices) goes in sorted
// path order, so a seed decides every outcome.
//
// # The model
//
// A Disk models a kernel with a page cache in front of a disk, the way a
// journaling file system such as ext4 behaves, reduced to what a crash
// can show:
//
//   - Data. Write and Truncate change a file's page-cache copy, which
//     every open handle reads. File.Sync copies it to the durable copy:
//     the file's data and size survive a power loss from then on.
//   - Names. Creating a file or directory, Rename and Remove change the
//     namespace at once (every handle sees it) and are queued as
//     metadata operations, in order. SyncDir on a directory makes durable
//     every queued operation up to the last one that touched that
//     directory: the file system's journal commits metadata in order, so
//     a later operation is never durable without the earlier ones. A file
//     whose creation is not durable does not exist after a power loss,
//     however often its data was synced.
//   - ProcessCrash (Crash with Kind ProcessCrash: kill -9, a panic) ends
//     the process, not the kernel: every handle is closed, every Lock is
//     released, and the page cache and the queued metadata stay as they
//     are (not durable yet: a later PowerLoss can still lose them).
//   - PowerLoss (Crash with Kind PowerLoss) keeps only what is durable:
//     the queued metadata operations are dropped, except a prefix of them
//     if CrashOptions.Metadata says so; each surviving file goes back to
//     its durable copy, except that a file whose page cache only appended
//     to its durable copy since the last Sync may keep part of that
//     suffix, cut at a byte CrashOptions.Tear chooses (a torn write). A
//     file whose page cache overwrote or truncated durable bytes goes back
//     to its durable copy whole. Handles and locks go as with
//     ProcessCrash.
//   - Capacity. SetCapacity bounds the bytes of all files' page-cache
//     copies together (files removed while open count until closed). A
//     write that would go past it writes what fits and fails with an
//     *fs.PathError wrapping syscall.ENOSPC, as a full disk does.
//     Overwriting bytes in place needs no room; truncating frees it.
//     Names and directories take no room.
//   - Damage. FlipBit flips one bit of a file's durable copy, as bit rot
//     on the medium does; if the page cache holds the same byte unchanged
//     it flips there too (reads see the damage at once, as after the cache
//     was dropped), while a byte written since the last Sync keeps its new
//     value, and the next Sync writes it over the flip.
//   - Locks. Lock is an exclusive flock: a second Lock of the same file
//     while one is held fails with an *fs.PathError wrapping
//     syscall.EWOULDBLOCK, which the journal reports as ErrLocked. Crash
//     releases every lock.
//   - SetReadOnly makes every change fail with syscall.EROFS, as a file
//     system remounted read-only after an error does.
//
// Not modelled: permissions and owners (every operation is allowed),
// modification times (always zero), hard and symbolic links, renaming
// directories, sparse files (growth by Truncate counts as used), inode
// or directory-size limits, reordering of data writes within a file
// (only a suffix is torn), and I/O errors other than the ones above;
// wrap the Disk in a journal.FS of your own to inject those.
//
// A Disk is safe for concurrent use (a journal without ManualTick syncs
// from its own goroutine), but determinism needs the calls themselves to
// come in a deterministic order, as they do from a single-threaded
// simulation.
package simdisk
