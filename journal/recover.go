package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// listDir returns the segment ids in the directory, ascending, and which
// have a snapshot file. It removes leftover temporary files.
func (j *Journal) listDir() ([]uint32, map[uint32]bool, error) {
	ents, err := j.fs.ReadDir(j.dir)
	if err != nil {
		return nil, nil, err
	}
	var ids []uint32
	snaps := make(map[uint32]bool)
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			j.fs.Remove(filepath.Join(j.dir, name))
			continue
		}
		ext := name[strings.LastIndexByte(name, '.')+1:]
		if len(name) != 10+len(segExt) || (ext != segExt[1:] && ext != snapExt[1:]) {
			continue
		}
		id, err := strconv.ParseUint(name[:10], 10, 32)
		if err != nil || id == 0 {
			continue
		}
		if ext == segExt[1:] {
			ids = append(ids, uint32(id))
		} else {
			snaps[uint32(id)] = true
		}
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	return ids, snaps, nil
}

// recover indexes every segment, cuts a torn tail, applies retention and
// writes the snapshots the scanned segments lacked. Called by Open before
// anything else can use the journal.
func (j *Journal) recover() error {
	ids, snaps, err := j.listDir()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	have := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	// In id order, not map order: the file system sees the same calls
	// every time (a simulation replays them).
	for _, id := range slices.Sorted(maps.Keys(snaps)) {
		if !have[id] {
			j.fs.Remove((&segment{path: j.segPath(id)}).snapPath())
		}
	}
	start := j.now()
	for i, id := range ids {
		seg := &segment{id: id, path: j.segPath(id)}
		if !snaps[id] || !j.loadSnapshot(seg) {
			if err := j.scanSegment(seg, i == len(ids)-1, snaps[id]); err != nil {
				return err
			}
			j.st.scanned++
		} else {
			j.st.loaded++
		}
		j.idx.segs = append(j.idx.segs, seg)
		j.idx.bytes += seg.size
	}
	maxEpoch := j.meta.maxEpoch
	for _, ep := range j.idx.epochs {
		maxEpoch = max(maxEpoch, ep.epoch)
		for _, s := range ep.order {
			s.wlast = s.last
		}
	}
	j.maxEpoch.Store(maxEpoch)

	now := j.now().UnixNano()
	j.mu.Lock()
	for _, ep := range j.idx.epochs {
		for _, s := range ep.order {
			j.trim(s, now)
		}
	}
	j.mu.Unlock()
	j.reclaimSegments()
	j.makeRoom(segHeaderSize)
	j.findHoles()
	for _, seg := range j.idx.segs {
		if seg.scanned {
			j.writeSnapshot(seg)
		}
	}
	j.lg.Debug("journal: recovered",
		zap.Int("segments", len(j.idx.segs)), zap.Int("scanned", j.st.scanned), zap.Int("from snapshot", j.st.loaded),
		zap.Int64("batches", j.idx.batch), zap.Int("epochs", len(j.idx.epochs)), zap.Duration("took", j.now().Sub(start)))
	return nil
}

// findHoles records the holes of every stream after recovery and logs
// what they come to.
func (j *Journal) findHoles() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, ep := range j.idx.epochs {
		for _, s := range ep.order {
			j.idx.findHoles(s)
			for _, h := range s.holes {
				j.rl.Warn("holes", "journal: records that were appended cannot be read; they will be reported lost",
					zap.Uint64("epoch", ep.epoch), zap.String("topic", s.topic), zap.Uint64("from", h.From), zap.Uint64("to", h.To))
			}
		}
	}
	if j.idx.holes > 0 {
		j.lg.Warn("journal: holes in the streams", zap.Int("holes", j.idx.holes), zap.Int64("records", j.idx.holeRecs))
	}
}

// loadSnapshot indexes seg from its snapshot file and reports whether it
// could; on false nothing was indexed and the segment must be scanned.
//
// A valid snapshot is trusted over the segment file: the segment was
// complete when it was sealed, so a file shorter than the snapshot says
// has lost records the journal had written, which is damage, not an
// interrupted write. The batches the snapshot lists beyond the file's
// end are indexed as damaged (holes), and the streams keep the last
// sequences the snapshot recorded, so what is gone is reported, not
// forgotten. An end record the snapshot lists that does not verify still
// marks its epoch as ended cleanly (version 2 snapshots name its epoch).
func (j *Journal) loadSnapshot(seg *segment) bool {
	b, err := readFile(j.fs, seg.snapPath())
	if err != nil {
		return false
	}
	sn, err := decodeSnapshot(b)
	if err == nil && sn.id != seg.id {
		err = fmt.Errorf("snapshot of segment %d", sn.id)
	}
	var size int64
	if err == nil {
		var fi fs.FileInfo
		if fi, err = j.fs.Stat(seg.path); err == nil {
			size = fi.Size()
		}
	}
	if err == nil {
		err = j.checkSnapshotOrder(&sn)
	}
	var ends []endRead
	if err == nil {
		ends, err = j.readEnds(seg, sn.ends)
	}
	if err != nil {
		j.lg.Warn("journal: ignoring index snapshot; scanning the segment", zap.Uint32("segment", seg.id), zap.Error(err))
		return false
	}
	if size < sn.length {
		j.st.short.Add(1)
		j.st.shortBytes.Add(sn.length - size)
		j.lg.Error("journal: segment is shorter than its index snapshot says: records it held are lost "+
			"(damage, not an interrupted write); they are kept as holes and reported lost",
			zap.Uint32("segment", seg.id), zap.Int64("bytes", size), zap.Int64("snapshot bytes", sn.length))
	}
	streams := make([]*stream, len(sn.streams))
	counts := make([]int, len(sn.streams))
	for _, se := range sn.entries {
		counts[se.stream]++
	}
	for i, ss := range sn.streams {
		s := j.idx.addEpoch(ss.epoch).streamString(ss.topic)
		s.last = max(s.last, ss.last)
		s.curSeg, s.curIdx = seg.id, len(seg.streams)
		seg.streams = append(seg.streams, segStream{s: s, last: ss.last})
		s.ents = slices.Grow(s.ents, counts[i])
		streams[i] = s
	}
	for _, se := range sn.entries {
		e := se.e
		e.damaged = int64(e.off)+int64(e.size) > size
		j.idx.add(seg, streams[se.stream], e)
	}
	for i := range ends {
		ref := sn.ends[i]
		if ends[i].err == nil {
			j.indexEnd(seg, ref.off, ref.size, &ends[i].rec)
			continue
		}
		j.st.corrupt.Add(1)
		if ref.epoch != 0 {
			ep := j.idx.addEpoch(ref.epoch)
			ep.clean = true
			ep.ends++
			seg.ends = append(seg.ends, endRef{off: ref.off, size: ref.size, ep: ep})
		}
		j.lg.Warn("journal: an epoch-end record the index snapshot lists is damaged; the snapshot's last sequences stand",
			zap.Uint32("segment", seg.id), zap.Uint32("offset", ref.off), zap.Uint64("epoch", ref.epoch), zap.Error(ends[i].err))
	}
	seg.size = sn.length
	return true
}

// endRead is an end record a snapshot lists, as read: decoded, or why not.
type endRead struct {
	rec record
	err error
}

// readEnds reads and decodes the end records a snapshot lists. One that
// is cut off or does not verify has its err set; the error returned is
// one of reading the file.
func (j *Journal) readEnds(seg *segment, refs []snapEnd) ([]endRead, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	f, err := j.fs.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]endRead, len(refs))
	for i, ref := range refs {
		buf := make([]byte, ref.size)
		n, err := f.ReadAt(buf, int64(ref.off))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		rec, _, err := decodeRecord(buf[:n], j.pub)
		if err == nil && rec.typ != recEnd {
			err = errors.New("not an end record")
		}
		if err != nil {
			out[i].err = fmt.Errorf("end record at %d: %w", ref.off, err)
			continue
		}
		out[i].rec = rec
	}
	return out, nil
}

// checkSnapshotOrder verifies that the snapshot's batches continue the
// streams indexed so far, in increasing order.
func (j *Journal) checkSnapshotOrder(sn *snapshot) error {
	prev := make([]uint64, len(sn.streams))
	for i, ss := range sn.streams {
		if ep := j.idx.epoch(ss.epoch); ep != nil {
			if s := ep.streams[ss.topic]; s != nil && len(s.held()) > 0 {
				prev[i] = s.held()[len(s.held())-1].last()
			}
		}
	}
	for k, se := range sn.entries {
		if se.e.seq <= prev[se.stream] {
			return fmt.Errorf("entry %d: sequence %d after %d", k, se.e.seq, prev[se.stream])
		}
		prev[se.stream] = se.e.last()
	}
	return nil
}

// indexEnd records a decoded end record found in seg.
func (j *Journal) indexEnd(seg *segment, off, size uint32, rec *record) {
	ep := j.idx.addEpoch(rec.epoch)
	ep.clean = true
	ep.ends++
	seg.ends = append(seg.ends, endRef{off: off, size: size, ep: ep})
	rec.endEntries(func(topic []byte, final uint64) {
		s := ep.stream(topic)
		s.last = max(s.last, final)
	})
}

// accept indexes a valid record found by a scan of seg at off, unless it
// cannot belong where it is: a batch whose sequence does not advance its
// stream (a stale copy found while resynchronising) is refused.
func (j *Journal) accept(seg *segment, off int64, size int, rec *record) bool {
	if rec.typ == recEnd {
		j.indexEnd(seg, uint32(off), uint32(size), rec)
		return true
	}
	h := &rec.h
	ep := j.idx.epoch(h.Epoch)
	if ep != nil {
		if s := ep.streams[string(rec.topic)]; s != nil && h.Seq <= s.last {
			return false
		}
	} else {
		ep = j.idx.addEpoch(h.Epoch)
	}
	j.idx.add(seg, ep.stream(rec.topic), entry{
		seq: h.Seq, time: h.Time, seg: seg.id, off: uint32(off), size: uint32(size), count: h.Count,
	})
	return true
}

// scanWindow is how much a scan reads at a time.
const scanWindow = 1 << 20

// scanSegment indexes seg by reading every record. A damaged region is
// skipped up to the next valid record. Bytes after the last valid record
// of the last segment are a torn tail (an interrupted write: a crash left
// them) and are cut off, unless the segment was sealed (it had a
// snapshot, now unusable): a sealed segment was complete, so bytes that
// do not verify at its end, like those at the end of any earlier segment,
// are damage, left in place and ignored.
func (j *Journal) scanSegment(seg *segment, last, sealed bool) error {
	f, err := j.fs.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	r := scanReader{j: j, seg: seg, f: f, size: fi.Size()}
	if valid, err := checkSegHeader(r.at(0, segHeaderSize), j.pub, seg.id); err != nil {
		return err
	} else if !valid && r.size >= segHeaderSize {
		j.st.corrupt.Add(1)
		j.lg.Warn("journal: segment header damaged; reading its records anyway", zap.Uint32("segment", seg.id))
	}
	off, end := int64(segHeaderSize), int64(segHeaderSize)
	for off < r.size && r.err == nil {
		if n, ok := r.try(off); ok {
			off += int64(n)
			end = off
			continue
		}
		next, n := r.resync(off + 1)
		if next < 0 {
			break
		}
		j.st.corrupt.Add(1)
		j.rl.Warn("scan-corrupt", "journal: skipped damaged bytes up to the next valid record",
			zap.Uint32("segment", seg.id), zap.Int64("offset", off), zap.Int64("bytes", next-off))
		off = next + int64(n)
		end = off
	}
	if r.err != nil {
		return fmt.Errorf("journal: read segment %d: %w", seg.id, r.err)
	}
	seg.scanned = true
	seg.size = min(end, r.size)
	switch {
	case end >= r.size:
	case !last || sealed:
		j.st.corrupt.Add(1)
		j.lg.Warn("journal: damaged tail in a sealed segment ignored (damage, not an interrupted write)",
			zap.Uint32("segment", seg.id), zap.Int64("offset", end), zap.Int64("bytes", r.size-end))
	default:
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("journal: cut torn tail of segment %d: %w", seg.id, err)
		}
		j.st.torn.Add(1)
		j.st.tornBytes.Add(r.size - end)
		j.lg.Warn("journal: cut torn tail after the last valid record (an interrupted write)",
			zap.Uint32("segment", seg.id), zap.Int64("offset", end), zap.Int64("bytes", r.size-end))
	}
	// Open writes the segment's snapshot next, durably, and trusts it
	// from then on: the bytes it claims must be on disk first, or a power
	// loss (after a process crash left them in the page cache only) would
	// turn them into holes.
	if j.cfg.Sync != SyncNever {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("journal: sync segment %d: %w", seg.id, err)
		}
	}
	return nil
}

// scanReader reads a segment through a window buffer.
type scanReader struct {
	j    *Journal
	seg  *segment
	f    File
	size int64
	buf  []byte
	win  []byte
	wOff int64
	err  error
}

// at returns the bytes from off to the end of the window, at least n of
// them unless the file ends first.
func (r *scanReader) at(off int64, n int) []byte {
	if off >= r.wOff && off+int64(n) <= r.wOff+int64(len(r.win)) {
		return r.win[off-r.wOff:]
	}
	want := int64(max(n, scanWindow))
	want = max(min(want, r.size-off), 0)
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	k, err := r.f.ReadAt(r.buf[:want], off)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	r.win, r.wOff = r.buf[:k], off
	return r.win
}

// try decodes and indexes the record at off. The head checksum is checked
// before the body is read, so garbage that claims a huge length costs
// little.
func (r *scanReader) try(off int64) (int, bool) {
	b := r.at(off, recHeadSize)
	size, covered, err := recordHead(b)
	if err != nil || off+int64(size) > r.size {
		return 0, false
	}
	if b = r.at(off, recHeadSize+covered); len(b) < recHeadSize+covered || !headSumOK(b, covered) {
		return 0, false
	}
	b = r.at(off, size)
	rec, n, err := decodeRecord(b, r.j.pub)
	if err != nil {
		return 0, false
	}
	return n, r.j.accept(r.seg, off, n, &rec)
}

// resync finds the first valid record at or after from and returns its
// offset and size (indexed), or -1.
func (r *scanReader) resync(from int64) (int64, int) {
	const chunk = 64 << 10
	for c := from; c+recHeadSize <= r.size && r.err == nil; {
		w := r.at(c, int(min(chunk, r.size-c)))
		i := bytes.Index(w, []byte(recMarker))
		if i < 0 {
			if len(w) <= len(recMarker) {
				return -1, 0
			}
			c += int64(len(w) - len(recMarker) + 1)
			continue
		}
		c += int64(i)
		if n, ok := r.try(c); ok {
			return c, n
		}
		c++
	}
	return -1, 0
}
