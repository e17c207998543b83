package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/syncmq/syncmq/internal/mutation"

	"github.com/syncmq/syncmq/envelope"
	"go.uber.org/zap"
)

// flushBytes is how much AppendAll encodes before it writes: several
// small batches share one write system call, a large one gets its own.
const flushBytes = 1 << 20

// Append writes one DATA envelope (the three frames the publisher is about
// to send) to the active segment with a single write system call, and
// with SyncAlways an fsync, before it returns. When it returns nil the
// batch is in the journal and visible to Read; hand it to the socket only
// then, so that the journal holds everything any subscriber could have
// seen.
//
// The frames are checked, not trusted: a well-formed DATA header of this
// journal's publisher, a valid topic, a payload of the header's length
// (its checksum is verified when read, not here). The batch's epoch must
// be the active one or a new one (which Begin then starts; ErrEpoch
// otherwise), and its first sequence must continue its (epoch, topic)
// stream: 1 for a new topic, last+1 after that. A duplicate, a step back
// or a gap is refused with ErrSequence and nothing is written.
//
// A failed write (a full disk: the error matches syscall.ENOSPC) is undone
// by truncating the segment back to where it was: nothing written before
// is lost, the stream's next sequence is unchanged, and the same batch may
// be appended again later. If the undo or an fsync fails, the journal
// enters the failed state (ErrFailed) until it is reopened.
//
// Append copies the frames; the caller may reuse them when it returns.
// It allocates nothing in steady state.
func (j *Journal) Append(f envelope.Frames) error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if err := j.writable(); err != nil {
		return err
	}
	err := j.stage(&f)
	if err == nil {
		err = j.flush()
	}
	if err != nil {
		j.st.appendErrors.Add(1)
	}
	return err
}

// AppendAll appends fs in order like Append, sharing write system calls
// (and with SyncAlways one fsync) among them. It returns how many batches
// are in the journal: on an error, fs[:n] were appended and fs[n:] not.
func (j *Journal) AppendAll(fs []envelope.Frames) (int, error) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if err := j.writable(); err != nil {
		return 0, err
	}
	j.appended = 0
	var err error
	for i := range fs {
		if err = j.stage(&fs[i]); err != nil {
			break
		}
	}
	if ferr := j.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		j.st.appendErrors.Add(1)
	}
	return j.appended, err
}

// checkFrames validates a DATA envelope for the journal.
func (j *Journal) checkFrames(f *envelope.Frames) (envelope.Header, error) {
	topic, hdr, payload := f[0], f[1], f[2]
	h, err := envelope.ParseHeader(hdr)
	switch {
	case err != nil:
		return h, fmt.Errorf("%w: %w", ErrBatch, err)
	case h.Kind != envelope.KindData:
		return h, fmt.Errorf("%w: kind %v, want DATA", ErrBatch, h.Kind)
	case h.Publisher != j.pub:
		return h, fmt.Errorf("%w: batch of publisher %s in the journal of %s", ErrPublisher, h.Publisher, j.pub)
	case uint64(h.Len) != uint64(len(payload)):
		return h, fmt.Errorf("%w: payload of %d bytes, header says %d", ErrBatch, len(payload), h.Len)
	case len(topic)+envelope.HeaderSize+len(payload) > maxBody:
		return h, fmt.Errorf("%w: %d payload bytes exceed the limit", ErrBatch, len(payload))
	}
	if err := envelope.CheckTopic(topic, h.Kind, envelope.Limits{}); err != nil {
		return h, fmt.Errorf("%w: %w", ErrBatch, err)
	}
	return h, nil
}

// stage validates one batch and encodes it into wbuf, writing what is
// already there first when the segment must roll, room must be made, or
// wbuf is full. Called with wmu held.
func (j *Journal) stage(f *envelope.Frames) error {
	h, err := j.checkFrames(f)
	if err != nil {
		return err
	}
	if j.cur == nil || h.Epoch != j.cur.epoch {
		if err := j.flush(); err != nil {
			return err
		}
		if err := j.begin(h.Epoch); err != nil {
			return err
		}
	}
	topic := f[0]
	s := j.cur.streams[string(topic)]
	wlast := uint64(0)
	if s != nil {
		wlast = s.wlast
	}
	if h.Seq != wlast+1 {
		return fmt.Errorf("%w: topic %q epoch %d: batch starts at %d, want %d", ErrSequence, topic, h.Epoch, h.Seq, wlast+1)
	}
	if s == nil {
		j.mu.Lock()
		s = j.cur.stream(topic)
		j.mu.Unlock()
	}
	size := recordSize(len(topic), len(f[2]))
	if err := j.room(size); err != nil {
		return err
	}
	off := j.act.size + int64(len(j.wbuf))
	j.wbuf = appendBatchRecord(j.wbuf, topic, f[1], f[2])
	j.pending = append(j.pending, pendingBatch{s: s, e: entry{
		seq: h.Seq, time: h.Time, seg: j.act.id, off: uint32(off), size: uint32(size), count: h.Count,
	}})
	s.wlast = h.LastSeq()
	if len(j.wbuf) >= flushBytes {
		return j.flush()
	}
	return nil
}

// room makes sure a record of size bytes can be staged: an active segment
// exists and has room (else it is rolled), and the global budget has room
// (else the oldest segments are deleted).
func (j *Journal) room(size int) error {
	if j.act == nil {
		if err := j.newSegment(); err != nil {
			return err
		}
	}
	if used := j.act.size + int64(len(j.wbuf)); used > segHeaderSize && used+int64(size) > j.cfg.SegmentBytes {
		if err := j.flush(); err != nil {
			return err
		}
		if err := j.roll(); err != nil {
			return err
		}
	}
	if j.idx.bytes+int64(len(j.wbuf))+int64(size) > j.cfg.MaxBytes {
		if err := j.flush(); err != nil {
			return err
		}
		j.makeRoom(int64(size))
	}
	return nil
}

// flush writes wbuf to the active segment and indexes what it held.
// Called with wmu held.
func (j *Journal) flush() error {
	if len(j.wbuf) == 0 {
		return nil
	}
	seg, f := j.act, j.actFile
	n, err := f.Write(j.wbuf)
	if err == nil && n != len(j.wbuf) {
		err = fmt.Errorf("short write of %d of %d bytes", n, len(j.wbuf))
	}
	if err != nil {
		err = fmt.Errorf("journal: write segment %d: %w", seg.id, err)
		if terr := f.Truncate(seg.size); terr != nil {
			j.fail(errors.Join(err, fmt.Errorf("journal: undo the write: %w", terr)))
			err = j.writable()
		}
		j.unstage()
		return err
	}
	j.dirty.Store(true)
	if j.cfg.Sync == SyncAlways && !mutation.Is(mutation.SkipFsync) {
		if serr := f.Sync(); serr != nil {
			j.st.syncErrors.Add(1)
			j.fail(fmt.Errorf("journal: sync segment %d: %w", seg.id, serr))
			j.unstage()
			return j.writable()
		}
		j.st.syncs.Add(1)
	}
	var now int64
	if j.cfg.Retention.MaxAge > 0 {
		now = j.now().UnixNano()
	}
	j.mu.Lock()
	seg.size += int64(len(j.wbuf))
	j.idx.bytes += int64(len(j.wbuf))
	for i := range j.pending {
		p := &j.pending[i]
		if p.end != nil {
			seg.ends = append(seg.ends, endRef{off: p.e.off, size: p.e.size, ep: p.end})
			p.end.ends++
			continue
		}
		j.idx.add(seg, p.s, p.e)
		j.trim(p.s, now)
	}
	j.mu.Unlock()
	for i := range j.pending {
		if j.pending[i].s != nil {
			j.appended++
			j.st.appended.Add(1)
		}
	}
	clear(j.pending)
	j.pending, j.wbuf = j.pending[:0], j.wbuf[:0]
	if j.reclaim {
		j.reclaimSegments()
	}
	return nil
}

// unstage forgets the staged batches after a failed write: their streams'
// next sequence goes back to where it was.
func (j *Journal) unstage() {
	for i := len(j.pending) - 1; i >= 0; i-- {
		if p := &j.pending[i]; p.s != nil {
			p.s.wlast = p.e.seq - 1
		}
	}
	clear(j.pending)
	j.pending, j.wbuf = j.pending[:0], j.wbuf[:0]
}

// trim applies Retention to s. Called with wmu and mu held.
func (j *Journal) trim(s *stream, now int64) {
	r := &j.cfg.Retention
	for len(s.held()) > 1 && ((r.MaxMessages > 0 && s.records > r.MaxMessages) || (r.MaxBytes > 0 && s.bytes > r.MaxBytes)) {
		j.drop(s)
	}
	if r.MaxAge > 0 {
		cut := now - int64(r.MaxAge)
		for len(s.held()) > 0 && s.held()[0].time < cut {
			j.drop(s)
		}
	}
}

func (j *Journal) drop(s *stream) {
	if seg := j.idx.dropFront(s); seg != nil && seg != j.act {
		j.reclaim = true
	}
	j.st.evicted.Add(1)
}

// sweepAge applies Retention.MaxAge to every stream as of now (Unix ns).
func (j *Journal) sweepAge(now int64) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.closed.Load() {
		return
	}
	j.mu.Lock()
	for _, ep := range j.idx.epochs {
		for _, s := range ep.order {
			j.trim(s, now)
		}
	}
	j.mu.Unlock()
	if j.reclaim {
		j.reclaimSegments()
	}
}

// pinned reports whether seg must stay although no stream holds a batch
// in it: it holds the end record of an epoch that still holds batches.
// Called with mu held.
func pinned(seg *segment) bool {
	for _, e := range seg.ends {
		if e.ep.heldBatches() > 0 {
			return true
		}
	}
	return false
}

// reclaimSegments deletes the sealed segments no stream holds anything
// in. Called with wmu held.
func (j *Journal) reclaimSegments() {
	j.reclaim = false
	j.mu.Lock()
	for _, seg := range j.idx.segs {
		if seg != j.act && seg.live == 0 && !pinned(seg) {
			j.victims = append(j.victims, seg)
		}
	}
	for _, seg := range j.victims {
		j.idx.removeSeg(seg)
	}
	j.forgetEpochs()
	j.mu.Unlock()
	j.removeVictims("retention")
}

// makeRoom deletes the oldest sealed segments until size more bytes fit
// in MaxBytes. Called with wmu held and nothing staged.
func (j *Journal) makeRoom(size int64) {
	j.mu.Lock()
	for j.idx.bytes+size > j.cfg.MaxBytes {
		var oldest *segment
		for _, seg := range j.idx.segs {
			if seg != j.act {
				oldest = seg
				break
			}
		}
		if oldest == nil {
			break
		}
		j.st.evicted.Add(uint64(j.idx.removeSeg(oldest)))
		j.victims = append(j.victims, oldest)
	}
	j.forgetEpochs()
	j.mu.Unlock()
	j.removeVictims("global byte budget")
}

// forgetEpochs drops epochs that hold no batch and no end record any more
// (except the active one), as a reopen would. Called with mu held.
func (j *Journal) forgetEpochs() {
	keep := j.idx.epochs[:0]
	for _, ep := range j.idx.epochs {
		if ep == j.cur || ep.ends > 0 || ep.heldBatches() > 0 {
			keep = append(keep, ep)
		}
	}
	clear(j.idx.epochs[len(keep):])
	j.idx.epochs = keep
}

// removeVictims deletes the files of the segments in j.victims.
func (j *Journal) removeVictims(why string) {
	for _, seg := range j.victims {
		err := j.fs.Remove(seg.path)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if rerr := j.fs.Remove(seg.snapPath()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = rerr
		}
		j.st.segDeleted.Add(1)
		if err != nil {
			j.lg.Warn("journal: cannot delete segment", zap.Uint32("segment", seg.id), zap.Error(err))
			continue
		}
		j.lg.Info("journal: deleted segment", zap.Uint32("segment", seg.id), zap.Int64("bytes", seg.size), zap.String("reason", why))
	}
	clear(j.victims)
	j.victims = j.victims[:0]
}

// segPath returns the file name of segment id.
func (j *Journal) segPath(id uint32) string {
	return filepath.Join(j.dir, fmt.Sprintf("%010d%s", id, segExt))
}

// newSegment creates the next segment file and makes it active. Called
// with wmu held.
func (j *Journal) newSegment() error {
	var id uint32 = 1
	if n := len(j.idx.segs); n > 0 {
		id = j.idx.segs[n-1].id + 1
		if id == 0 {
			return fmt.Errorf("journal: segment ids exhausted")
		}
	}
	path := j.segPath(id)
	f, err := j.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("journal: create segment: %w", err)
	}
	j.tmp = appendSegHeader(j.tmp[:0], j.pub, id)
	if _, err = f.Write(j.tmp); err == nil && j.cfg.Sync != SyncNever {
		if err = f.Sync(); err == nil {
			err = j.fs.SyncDir(j.dir)
		}
	}
	if err != nil {
		f.Close()
		j.fs.Remove(path)
		return fmt.Errorf("journal: create segment %d: %w", id, err)
	}
	seg := &segment{id: id, path: path, size: segHeaderSize}
	j.mu.Lock()
	j.idx.segs = append(j.idx.segs, seg)
	j.idx.bytes += seg.size
	j.act = seg
	j.mu.Unlock()
	j.actFile = f
	j.fileMu.Lock()
	j.syncF = f
	j.fileMu.Unlock()
	return nil
}

// roll seals the active segment and starts the next. Called with wmu held
// and nothing staged. The sealed segment's fsync, close and snapshot are
// left to the background goroutine, so Append does not wait for them. If
// the new segment cannot be created, the journal has no active segment
// and the next append tries again.
func (j *Journal) roll() error {
	j.seal(true)
	return j.newSegment()
}

// sealJob is a sealed segment whose file the background goroutine syncs,
// closes and snapshots.
type sealJob struct {
	seg *segment
	f   File
}

// seal takes the active segment out of service. With async it queues the
// rest for the background goroutine and returns nil; otherwise it syncs
// (unless SyncNever or failed), closes and snapshots it now. Called with
// wmu held.
func (j *Journal) seal(async bool) error {
	seg, f := j.act, j.actFile
	j.fileMu.Lock()
	j.syncF = nil
	j.fileMu.Unlock()
	j.mu.Lock()
	j.act = nil
	j.mu.Unlock()
	j.actFile = nil
	if async {
		j.sealMu.Lock()
		j.sealQ = append(j.sealQ, sealJob{seg: seg, f: f})
		j.sealMu.Unlock()
		select {
		case j.sealWake <- struct{}{}:
		default:
		}
		return nil
	}
	err := j.finishSeal(seg, f, j.failed == nil)
	if err != nil {
		j.fail(err)
	}
	return err
}

// finishSeal syncs (when doSync and the mode syncs), closes and, unless
// the segment was deleted meanwhile, snapshots a sealed segment. A
// failed sync is returned for the caller to fail the journal with.
func (j *Journal) finishSeal(seg *segment, f File, doSync bool) error {
	var err error
	if doSync && j.cfg.Sync == SyncInterval {
		if err = f.Sync(); err != nil {
			j.st.syncErrors.Add(1)
			err = fmt.Errorf("journal: sync segment %d: %w", seg.id, err)
		} else {
			j.st.syncs.Add(1)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("journal: close segment %d: %w", seg.id, cerr)
	}
	if err == nil {
		j.writeSnapshot(seg)
	}
	return err
}

// runSeals finishes the queued seals and returns the first error, which
// has failed the journal. Called by the background goroutine, Tick and
// Close.
func (j *Journal) runSeals() error {
	var first error
	for {
		j.sealMu.Lock()
		if len(j.sealQ) == 0 {
			j.sealMu.Unlock()
			return first
		}
		job := j.sealQ[0]
		j.sealQ[0] = sealJob{}
		j.sealQ = j.sealQ[1:]
		j.sealMu.Unlock()
		if err := j.finishSeal(job.seg, job.f, !j.failedFlag.Load()); err != nil {
			j.wmu.Lock()
			j.fail(err)
			j.wmu.Unlock()
			if first == nil {
				first = err
			}
		}
	}
}

// writeSnapshot writes the index snapshot of a sealed segment, unless it
// was deleted, durably unless SyncNever: Open trusts it over the segment,
// so that records cut off a sealed segment are reported lost rather than
// taken for an interrupted write. A failure is logged, not returned:
// without a snapshot the segment is scanned. A snapshot written just as
// the segment is deleted is removed by the next Open.
func (j *Journal) writeSnapshot(seg *segment) {
	j.mu.RLock()
	if j.idx.seg(seg.id) != seg {
		j.mu.RUnlock()
		return
	}
	j.snapBuf = appendSnapshot(j.snapBuf[:0], seg)
	j.mu.RUnlock()
	if err := j.writeFileAtomic(seg.snapPath(), j.snapBuf, j.cfg.Sync != SyncNever); err != nil {
		j.lg.Warn("journal: cannot write index snapshot; the segment will be scanned at the next open",
			zap.Uint32("segment", seg.id), zap.Error(err))
	}
}

// stageEnd stages the end records of ep: the final sequence of each of
// its streams. Called with wmu held.
func (j *Journal) stageEnd(ep *epochState) error {
	now := j.now().UnixNano()
	ents := j.endBuf[:0]
	emitted := false
	emit := func() error {
		emitted = true
		size := recHeadSize + endFixed
		for _, e := range ents {
			size += 1 + len(e.topic) + 8
		}
		if err := j.room(size); err != nil {
			return err
		}
		off := j.act.size + int64(len(j.wbuf))
		j.wbuf = appendEndRecord(j.wbuf, ep.epoch, now, ents)
		j.pending = append(j.pending, pendingBatch{end: ep, e: entry{seg: j.act.id, off: uint32(off), size: uint32(size)}})
		ents = ents[:0]
		return nil
	}
	for _, s := range ep.order {
		if s.wlast == 0 {
			continue
		}
		ents = append(ents, endEntry{topic: s.topic, final: s.wlast})
		if len(ents) == maxEndEntries {
			if err := emit(); err != nil {
				return err
			}
		}
	}
	var err error
	if len(ents) > 0 || !emitted {
		err = emit() // an epoch without batches still ends with a record
	}
	j.endBuf = ents[:0]
	return err
}
