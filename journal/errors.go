package journal

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (or
// an *os.PathError / syscall.Errno from the file system, which errors.Is
// also matches: a full disk matches syscall.ENOSPC).
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("journal: invalid config")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("journal: closed")
	// ErrLocked reports that another Journal (in this or another process)
	// has the directory open.
	ErrLocked = errors.New("journal: directory is in use")
	// ErrPublisher reports a directory that belongs to another publisher
	// id, or a batch of another publisher.
	ErrPublisher = errors.New("journal: wrong publisher")
	// ErrDirectory reports a journal path that is missing, not a
	// directory, not writable, or holds a damaged JOURNAL file.
	ErrDirectory = errors.New("journal: bad directory")
	// ErrBatch reports a batch that is not a well-formed DATA envelope.
	ErrBatch = errors.New("journal: malformed batch")
	// ErrEpoch reports an Append or Begin for an epoch that is not the
	// active one and not above every epoch the journal has seen.
	ErrEpoch = errors.New("journal: epoch out of order")
	// ErrSequence reports a batch whose first sequence does not continue
	// its (epoch, topic) stream: a duplicate, a step back, or a gap.
	ErrSequence = errors.New("journal: sequence out of order")
	// ErrFailed is returned by every Append after a write or sync failed in
	// a way the journal could not undo. The journal still serves reads;
	// Close and Open it again to recover.
	ErrFailed = errors.New("journal: failed")
)
