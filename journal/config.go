package journal

import (
	"fmt"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"go.uber.org/zap"
)

// SyncMode says when the journal asks the kernel to put written data on
// stable storage (fsync). Every mode writes each batch to the segment
// file (one write system call) before Append returns, so a process crash
// loses nothing Append accepted: the data is in the kernel's page cache.
// The modes differ in what survives a power loss or a kernel crash.
type SyncMode int

const (
	// SyncInterval (the zero value) syncs the active segment every
	// Config.SyncInterval from a background goroutine, without holding
	// up Append. A power loss loses at most the batches appended in the
	// last interval (plus the sync in flight).
	SyncInterval SyncMode = iota
	// SyncAlways syncs before Append returns: a batch Append accepted
	// survives a power loss. Costs one fsync per Append (or AppendAll).
	SyncAlways
	// SyncNever leaves writeback to the kernel (on Linux dirty pages are
	// written within about 30 s). A power loss may lose any amount of
	// recent data; what survives is cut at its last valid record.
	SyncNever
)

func (m SyncMode) String() string {
	switch m {
	case SyncInterval:
		return "interval"
	case SyncAlways:
		return "always"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// Defaults used by DefaultConfig and for zero Config fields.
const (
	DefaultSyncInterval = time.Second
	DefaultSegmentBytes = 64 << 20
	DefaultMaxBytes     = 1 << 30
	// MinSegmentBytes and MaxSegmentBytes bound Config.SegmentBytes.
	MinSegmentBytes = 4 << 10
	MaxSegmentBytes = 1 << 30
)

// Retention bounds what the journal keeps of each (epoch, topic) stream.
// A zero field means no limit of that kind. Batches are kept and dropped
// whole, oldest first; the newest batch of a stream is never dropped for
// MaxMessages or MaxBytes, so a stream holds at most the limit or its
// newest batch, whichever is more.
type Retention struct {
	// MaxMessages is the most records (not batches) kept per stream.
	MaxMessages int64
	// MaxBytes is the most bytes kept per stream, counted as stored
	// (record framing, topic, header and payload).
	MaxBytes int64
	// MaxAge drops batches whose publish time (the envelope header's
	// time, i.e. that of their first record) is older than this. Checked
	// on Append, about every second in the background, and on Open.
	MaxAge time.Duration
}

// Config configures a Journal. Zero fields take the defaults documented
// on each field; DefaultConfig spells them out.
type Config struct {
	// Publisher is the publisher id the directory belongs to. A directory
	// created for another id is refused with ErrPublisher. Zero means
	// "the directory's own id": an existing journal keeps its id, a new
	// one gets envelope.NewID(); Journal.Publisher reports it.
	Publisher envelope.ID
	// Sync is the fsync policy, see SyncMode. Zero is SyncInterval.
	Sync SyncMode
	// SyncInterval is the period of SyncInterval mode. Zero means
	// DefaultSyncInterval (1 s). Ignored by the other modes.
	SyncInterval time.Duration
	// SegmentBytes is the size at which the active segment file is sealed
	// and a new one started, in bytes. Zero means DefaultSegmentBytes
	// (64 MiB). A batch larger than this gets a segment of its own.
	SegmentBytes int64
	// Retention is applied to every (epoch, topic) stream on its own.
	// The zero value keeps streams until the global MaxBytes needs room.
	Retention Retention
	// MaxBytes bounds the bytes of all segment files together, over all
	// topics and epochs. When an append would exceed it, the oldest
	// segments are deleted. Zero means DefaultMaxBytes (1 GiB). It must be
	// at least twice SegmentBytes (the active segment is never deleted).
	MaxBytes int64
	// Logger receives torn-tail cuts, corrupt records and segment
	// deletions (rate-limited where data can trigger them). Nil means no
	// logging.
	Logger *zap.Logger

	// FS is the file system the directory lives in. Nil means OSFS, the
	// real one. A simulation passes an in-memory one (internal/simdisk).
	FS FS
	// Now is the clock the journal reads: for Retention.MaxAge on Append
	// and at Open, and for the time in epoch-end records. Nil means
	// time.Now. A simulation passes its simulated clock.
	Now func() time.Time
	// ManualTick, when true, makes Open start no goroutine: the caller
	// drives the background work itself by calling Journal.Tick, as a
	// deterministic simulation does. Sealed segments are then synced,
	// closed and snapshotted by the next Tick (or Close), the active
	// segment is synced in SyncInterval mode by the first Tick at least
	// SyncInterval after the last, and Retention.MaxAge is applied by the
	// first Tick at least min(1 s, MaxAge) after the last sweep.
	ManualTick bool
}

// DefaultConfig returns the defaults: SyncInterval every second, 64 MiB
// segments, no per-stream limit and a 1 GiB global budget. Publisher is
// left zero (use the directory's id).
func DefaultConfig() Config {
	return Config{
		Sync:         SyncInterval,
		SyncInterval: DefaultSyncInterval,
		SegmentBytes: DefaultSegmentBytes,
		MaxBytes:     DefaultMaxBytes,
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	return c
}

// Validate reports whether c (with zero fields taking their defaults) is
// usable. Errors wrap ErrConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Sync < SyncInterval || c.Sync > SyncNever:
		return fmt.Errorf("%w: unknown sync mode %d", ErrConfig, int(c.Sync))
	case c.SyncInterval < 0:
		return fmt.Errorf("%w: SyncInterval %v is negative", ErrConfig, c.SyncInterval)
	case c.SegmentBytes < MinSegmentBytes || c.SegmentBytes > MaxSegmentBytes:
		return fmt.Errorf("%w: SegmentBytes %d outside [%d, %d]", ErrConfig, c.SegmentBytes, MinSegmentBytes, MaxSegmentBytes)
	case c.MaxBytes < 2*c.SegmentBytes:
		return fmt.Errorf("%w: MaxBytes %d is less than twice SegmentBytes %d", ErrConfig, c.MaxBytes, c.SegmentBytes)
	case c.Retention.MaxMessages < 0:
		return fmt.Errorf("%w: Retention.MaxMessages %d is negative", ErrConfig, c.Retention.MaxMessages)
	case c.Retention.MaxBytes < 0:
		return fmt.Errorf("%w: Retention.MaxBytes %d is negative", ErrConfig, c.Retention.MaxBytes)
	case c.Retention.MaxAge < 0:
		return fmt.Errorf("%w: Retention.MaxAge %v is negative", ErrConfig, c.Retention.MaxAge)
	}
	return nil
}
