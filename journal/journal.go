package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/ratelog"
	"go.uber.org/zap"
)

// Journal is a durable, segmented, append-only log of one publisher's DATA
// envelopes across its epochs. See the package documentation.
//
// Concurrency: Append, AppendAll, Begin, Sync and Close serialise on a
// writer lock; Read, Epochs and Stats may run concurrently with them and
// with each other. A Read holds the index lock only to copy a few index
// entries at a time and never across a disk read, so readers do not hold
// up Append for longer than an index copy.
type Journal struct {
	dir  string
	cfg  Config
	pub  envelope.ID
	lg   *zap.Logger
	rl   *ratelog.Logger
	fs   FS
	now  func() time.Time
	lock io.Closer

	// wmu serialises writers: Append, AppendAll, Begin, Close, the age
	// sweep and setting failed. It is taken before mu and fileMu.
	wmu      sync.Mutex
	failed   error
	meta     meta
	actFile  File   // active segment file; nil if creating it failed
	wbuf     []byte // records encoded but not yet written
	pending  []pendingBatch
	endBuf   []endEntry
	victims  []*segment
	tmp      []byte
	reclaim  bool // a trim emptied a sealed segment
	appended int  // batches committed by the current AppendAll

	// fileMu guards syncF, the file the background syncer may fsync, so
	// that a roll or Close never closes it under a running fsync.
	fileMu sync.Mutex
	syncF  File
	dirty  atomic.Bool

	// mu guards the index and the fields below; writers hold wmu too.
	mu  sync.RWMutex
	idx index
	act *segment    // active segment; nil if creating it failed
	cur *epochState // active epoch; nil before the first Begin or Append

	// sealQ holds sealed segments for the background goroutine.
	sealMu   sync.Mutex
	sealQ    []sealJob
	sealWake chan struct{}
	// snapBuf encodes snapshots: used by Open, then by the background
	// goroutine, then by Close after it stopped; never by two at once.
	snapBuf []byte

	// tickMu serialises Tick with Close (ManualTick); lastSync and
	// lastSweep are when Tick last synced and swept.
	tickMu              sync.Mutex
	lastSync, lastSweep time.Time

	maxEpoch   atomic.Uint64
	failedFlag atomic.Bool
	closed     atomic.Bool
	stop       chan struct{}
	done       chan struct{}

	st counters
}

type counters struct {
	appended, appendErrors, evicted, segDeleted atomic.Uint64
	syncs, syncErrors, torn, corrupt, short     atomic.Uint64
	tornBytes, shortBytes                       atomic.Int64
	scanned, loaded                             int
}

// pendingBatch is a record encoded into wbuf, indexed once written: a
// batch of stream s, or an end record of epoch end.
type pendingBatch struct {
	s   *stream
	end *epochState
	e   entry
}

// Open opens the journal in dir, creating dir (not its parents) and an
// empty journal if needed, and recovers it: every segment is indexed from
// its snapshot or, lacking a valid one, by scanning it; a torn tail of the
// last segment is cut at the last valid record; damaged records are
// skipped; retention is applied with the current time. It then starts a
// new active segment and a background goroutine that Close stops (none
// with Config.ManualTick: see Tick).
//
// Open fails with ErrConfig, ErrDirectory (missing parent, not a
// directory, not writable, damaged JOURNAL file), ErrLocked (another
// Journal has dir open) or ErrPublisher (dir belongs to another id). It
// blocks for the disk reads recovery needs.
func Open(dir string, cfg Config) (*Journal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	j := &Journal{dir: dir, cfg: cfg, lg: cfg.Logger, fs: cfg.FS, now: cfg.Now, sealWake: make(chan struct{}, 1)}
	if j.lg == nil {
		j.lg = zap.NewNop()
	}
	if j.fs == nil {
		j.fs = OSFS{}
	}
	if j.now == nil {
		j.now = time.Now
	}
	j.lg = j.lg.With(zap.String("journal", dir))
	j.rl = ratelog.New(j.lg, 0)
	if err := j.openDir(); err != nil {
		return nil, err
	}
	if err := j.openState(); err != nil {
		j.lock.Close()
		return nil, err
	}
	if cfg.ManualTick {
		j.lastSync, j.lastSweep = j.now(), j.now()
		return j, nil
	}
	j.stop, j.done = make(chan struct{}), make(chan struct{})
	go j.background()
	return j, nil
}

func (j *Journal) openState() error {
	if err := j.loadMeta(); err != nil {
		return err
	}
	j.pub = j.meta.publisher
	if err := j.recover(); err != nil {
		return err
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	return j.newSegment()
}

// openDir checks or creates dir and takes its lock.
func (j *Journal) openDir() error {
	fi, err := j.fs.Stat(j.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := j.fs.Mkdir(j.dir, 0o750); err != nil {
			return fmt.Errorf("%w: cannot create %s: %w", ErrDirectory, j.dir, err)
		}
	case err != nil:
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrDirectory, j.dir)
	}
	path := filepath.Join(j.dir, lockName)
	l, err := j.fs.Lock(path)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w: %s is locked by another journal", ErrLocked, path)
	}
	if err != nil {
		return fmt.Errorf("%w: %s is not writable: %w", ErrDirectory, j.dir, err)
	}
	j.lock = l
	return nil
}

// loadMeta reads the JOURNAL file, or creates it for a new journal.
func (j *Journal) loadMeta() error {
	path := filepath.Join(j.dir, metaName)
	b, err := readFile(j.fs, path)
	if errors.Is(err, fs.ErrNotExist) {
		if ids, _, _ := j.listDir(); len(ids) > 0 {
			return fmt.Errorf("%w: %s holds segments but no %s file", ErrDirectory, j.dir, metaName)
		}
		j.meta = meta{publisher: j.cfg.Publisher}
		if j.meta.publisher == (envelope.ID{}) {
			j.meta.publisher = envelope.NewID()
		}
		if err := j.writeMeta(); err != nil {
			return fmt.Errorf("%w: %w", ErrDirectory, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	m, err := decodeMeta(b)
	if err != nil {
		return fmt.Errorf("%w: %s is damaged: %v", ErrDirectory, path, err)
	}
	if j.cfg.Publisher != (envelope.ID{}) && m.publisher != j.cfg.Publisher {
		return fmt.Errorf("%w: %s belongs to publisher %s, not %s", ErrPublisher, j.dir, m.publisher, j.cfg.Publisher)
	}
	j.meta = m
	j.maxEpoch.Store(m.maxEpoch)
	return nil
}

// writeMeta replaces the JOURNAL file atomically and durably, in every
// sync mode: a JOURNAL file torn by a power loss would make the directory
// impossible to open, and it is written once per epoch.
func (j *Journal) writeMeta() error {
	j.tmp = appendMeta(j.tmp[:0], j.meta)
	return j.writeFileAtomic(filepath.Join(j.dir, metaName), j.tmp, true)
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so a crash leaves the old or the new content. With durable it
// syncs the file and the directory.
func (j *Journal) writeFileAtomic(path string, data []byte, durable bool) error {
	tmp := path + ".tmp"
	f, err := j.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = j.fs.Rename(tmp, path)
	}
	if err != nil {
		j.fs.Remove(tmp)
		return err
	}
	if durable {
		return j.fs.SyncDir(j.dir)
	}
	return nil
}

// Publisher returns the publisher id the journal belongs to.
func (j *Journal) Publisher() envelope.ID { return j.pub }

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// NextEpoch returns an epoch for a new incarnation of the publisher:
// atLeast (typically the start time in Unix microseconds), raised if needed to one above
// every epoch the journal has seen, so epochs keep growing even if the
// clock went back. It does not begin the epoch; see Begin.
func (j *Journal) NextEpoch(atLeast uint64) uint64 {
	return max(atLeast, j.maxEpoch.Load()+1)
}

// Begin makes epoch the active epoch. It is a no-op for the active epoch.
// A new epoch must be above every epoch the journal has seen (ErrEpoch
// otherwise); beginning it ends the previous active epoch (an end record
// with its final sequences is written) and records epoch in the JOURNAL
// file, synced in every mode, so NextEpoch stays above it even after
// every record of it is gone. Append begins a new epoch implicitly; a
// publisher calls Begin at start so that an epoch that never publishes
// is remembered too. Begin blocks for the file writes.
func (j *Journal) Begin(epoch uint64) error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if err := j.writable(); err != nil {
		return err
	}
	return j.begin(epoch)
}

func (j *Journal) begin(epoch uint64) error {
	if j.cur != nil && j.cur.epoch == epoch {
		return nil
	}
	if epoch == 0 || epoch <= j.maxEpoch.Load() {
		return fmt.Errorf("%w: epoch %d is not above %d, the highest this journal has seen", ErrEpoch, epoch, j.maxEpoch.Load())
	}
	if j.cur != nil {
		if err := j.stageEnd(j.cur); err != nil {
			return err
		}
		if err := j.flush(); err != nil {
			return err
		}
	}
	old := j.meta.maxEpoch
	j.meta.maxEpoch = epoch
	if err := j.writeMeta(); err != nil {
		j.meta.maxEpoch = old
		return fmt.Errorf("journal: record epoch %d: %w", epoch, err)
	}
	j.maxEpoch.Store(epoch)
	j.mu.Lock()
	if j.cur != nil {
		j.cur.clean = true
	}
	j.cur = j.idx.addEpoch(epoch)
	j.mu.Unlock()
	return nil
}

// writable reports why the journal cannot take writes, if it cannot.
// Called with wmu held.
func (j *Journal) writable() error {
	if j.closed.Load() {
		return ErrClosed
	}
	if j.failed != nil {
		return fmt.Errorf("%w: %w", ErrFailed, j.failed)
	}
	return nil
}

// fail puts the journal in the failed state. Called with wmu held.
func (j *Journal) fail(err error) {
	if j.failed == nil {
		j.failed = err
		j.failedFlag.Store(true)
		j.lg.Error("journal failed; appends refused until it is reopened", zap.Error(err))
	}
}

// Sync writes the active segment to stable storage and returns when it
// is there. It is what SyncInterval does periodically; with SyncAlways
// there is nothing left to sync. A failed sync puts the journal in the
// failed state.
func (j *Journal) Sync() error {
	if j.closed.Load() {
		return ErrClosed
	}
	if err := j.syncActive(true); err != nil {
		return err
	}
	return nil
}

// syncActive fsyncs the active segment if anything was written since the
// last sync (or always with force).
func (j *Journal) syncActive(force bool) error {
	j.fileMu.Lock()
	f := j.syncF
	if f == nil || (!force && !j.dirty.Load()) {
		j.fileMu.Unlock()
		return nil
	}
	j.dirty.Store(false)
	err := f.Sync()
	j.fileMu.Unlock()
	if err != nil {
		j.st.syncErrors.Add(1)
		err = fmt.Errorf("journal: sync: %w", err)
		j.wmu.Lock()
		j.fail(err)
		j.wmu.Unlock()
		return err
	}
	j.st.syncs.Add(1)
	return nil
}

// background finishes sealed segments (sync, close, snapshot), syncs the
// active segment every SyncInterval (SyncInterval mode) and applies
// Retention.MaxAge about every second. Tick does the same work for a
// journal opened with Config.ManualTick.
func (j *Journal) background() {
	defer close(j.done)
	var syncC, ageC <-chan time.Time
	if j.cfg.Sync == SyncInterval {
		t := time.NewTicker(j.cfg.SyncInterval)
		defer t.Stop()
		syncC = t.C
	}
	if j.cfg.Retention.MaxAge > 0 {
		t := time.NewTicker(j.sweepEvery())
		defer t.Stop()
		ageC = t.C
	}
	for {
		select {
		case <-j.stop:
			j.runSeals()
			return
		case <-j.sealWake:
			j.runSeals()
		case <-syncC:
			_ = j.syncActive(false) // a failure is kept in j.failed and logged
		case <-ageC:
			j.sweepAge(j.now().UnixNano())
		}
	}
}

// sweepEvery is the period of the MaxAge sweep.
func (j *Journal) sweepEvery() time.Duration { return min(time.Second, j.cfg.Retention.MaxAge) }

// Tick does, as of now, the background work of a journal opened with
// Config.ManualTick, which starts no goroutine: it finishes the segments
// sealed since the last Tick (fsync unless SyncNever, close, index
// snapshot); in SyncInterval mode it syncs the active segment, if written
// to, when SyncInterval has passed since the last Tick that did; and with
// a Retention.MaxAge it applies it, with now as the current time, when
// min(1 s, MaxAge) has passed since the last sweep. Open counts as the
// last sync and sweep. A simulation calls Tick from its event loop with
// its simulated time, as often as it likes; nothing is due between calls.
//
// It returns the error of a failed sync or seal, which has put the
// journal in the failed state (ErrFailed) as it would have from the
// background goroutine, ErrClosed after Close, and ErrConfig without
// ManualTick. It blocks for the fsyncs it does.
func (j *Journal) Tick(now time.Time) error {
	if !j.cfg.ManualTick {
		return fmt.Errorf("%w: Tick needs Config.ManualTick", ErrConfig)
	}
	j.tickMu.Lock()
	defer j.tickMu.Unlock()
	if j.closed.Load() {
		return ErrClosed
	}
	err := j.runSeals()
	if j.cfg.Sync == SyncInterval && now.Sub(j.lastSync) >= j.cfg.SyncInterval {
		j.lastSync = now
		if serr := j.syncActive(false); err == nil {
			err = serr
		}
	}
	if age := j.cfg.Retention.MaxAge; age > 0 && now.Sub(j.lastSweep) >= j.sweepEvery() {
		j.lastSweep = now
		j.sweepAge(now.UnixNano())
	}
	return err
}

// Close ends the active epoch (writes its end record), syncs and seals the
// active segment (writes its index snapshot), stops the background
// goroutine and waits for it, and releases the directory. Later calls
// return nil; every other method then returns ErrClosed. A Read in
// progress finishes on its own file handles. Close blocks for the final
// writes and fsync.
func (j *Journal) Close() error {
	if !j.closed.CompareAndSwap(false, true) {
		return nil
	}
	j.stopBackground()
	defer j.tickMu.Unlock()
	j.wmu.Lock()
	defer j.wmu.Unlock()
	var errs []error
	if j.failed == nil && j.cur != nil && j.act != nil {
		err := j.stageEnd(j.cur)
		if err == nil {
			err = j.flush()
		}
		if err == nil {
			j.mu.Lock()
			j.cur.clean = true
			j.mu.Unlock()
		}
		errs = append(errs, err)
	}
	if j.act != nil {
		errs = append(errs, j.seal(false))
	}
	j.runSeals() // segments the end record rolled over, after the goroutine stopped
	errs = append(errs, j.lock.Close())
	return errors.Join(errs...)
}

// stopBackground stops the background goroutine and waits for it, or,
// with ManualTick, waits for a Tick in progress. It returns with tickMu
// held, so no Tick runs after it; the caller unlocks it.
func (j *Journal) stopBackground() {
	if !j.cfg.ManualTick {
		close(j.stop)
		<-j.done
	}
	j.tickMu.Lock()
}
