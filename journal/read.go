package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"sync"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/mutation"
	"go.uber.org/zap"
)

// Batch is one stored DATA envelope as Read hands it out: the three frames
// exactly as they were appended, and the parsed header. The frames alias
// a buffer of the reader and are valid only during the callback.
type Batch struct {
	Frames envelope.Frames
	Header envelope.Header
}

// Message returns the batch as a decoded envelope (aliasing the frames).
func (b *Batch) Message() envelope.Message {
	return envelope.Message{Topic: b.Frames[0], Header: b.Header, Payload: b.Frames[2]}
}

// Records iterates the records of the batch whose sequences are in
// [from, to], as (sequence, payload) pairs in order. A stored batch may
// start before from or end after to; this is how a reader trims it.
func (b *Batch) Records(from, to uint64) iter.Seq2[uint64, []byte] {
	m := b.Message()
	return func(yield func(uint64, []byte) bool) {
		for seq, p := range m.Records() {
			if seq > to {
				return
			}
			if seq >= from && !yield(seq, p) {
				return
			}
		}
	}
}

// Range describes a stream as Read found it.
type Range struct {
	// Known says the journal holds the (epoch, topic) stream or knows its
	// final sequence. The other fields are zero when it is false.
	Known bool
	// First and Last are the first and last sequences the index holds
	// when Read started (damaged batches included); both 0 if the stream
	// holds nothing.
	First, Last uint64
	// Final is the last sequence ever appended to the stream, held or not
	// (evicted, or lost to damage), as the index, a segment's snapshot or
	// the epoch's end record recorded it. Only the last valid record of a
	// segment that was being written when the publisher crashed bounds
	// it: a torn tail is an interrupted write, not a loss.
	Final uint64
	// Closed says the epoch is not the active one: nothing more will be
	// appended and Final is the epoch's final sequence of the topic.
	Closed bool
	// Clean says the epoch was ended by Close or Begin (an end record),
	// not by a crash; Final of a crashed epoch is the last sequence of
	// its last valid record.
	Clean bool
	// Skipped counts batches in the range that were not passed to fn
	// because they are damaged: found so by this Read (their checksums
	// fail), or known to be (holes).
	Skipped int
	// Hole is the first run of sequences overlapping [from, to] that the
	// stream recorded but cannot read back (see Hole), as known when Read
	// returns, so including damage this Read found; zero if there is none
	// (or from > to). It may extend beyond to. Holes is the number of
	// holes in the whole stream.
	Hole  Hole
	Holes int
}

const (
	// readChunk is how many index entries Read copies per index lock.
	readChunk = 256
	// readBuffer is the reader's buffer; several batches are read with
	// one pread when they lie within it.
	readBuffer = 1 << 20
	// readGap is the most unrelated bytes a pread spans to reach the next
	// batch of the stream instead of issuing another pread.
	readGap = 64 << 10
)

// Read calls fn, in sequence order, for each stored batch of the (epoch,
// topic) stream that overlaps [from, to], until fn returns false. Batches
// are passed whole: the first may start before from and the last end
// after to, so the caller trims (Batch.Records does) or the receiver drops
// the duplicates. fn may be nil to query only the Range.
//
// Sequences the journal cannot read back show as a jump between batches:
// holes found at Open, and batches this Read finds damaged, which become
// holes from then on. Range.Hole names the first hole in [from, to], so a
// caller that serves the range tells exactly which records are lost
// instead of passing over them in silence.
//
// Every batch is verified (both checksums) before fn sees it. Read may
// run concurrently with Append and other Reads: it takes the index lock
// only to copy up to 256 index entries at a time and reads the disk
// without it. Batches evicted while Read runs may or may not be
// delivered. fn must not call methods of the Journal that write.
//
// It returns ErrClosed after Close and an error if a segment cannot be
// read; batches delivered before the error are valid. It allocates
// nothing per batch.
func (j *Journal) Read(epoch uint64, topic string, from, to uint64, fn func(Batch) bool) (Range, error) {
	var rng Range
	if j.closed.Load() {
		return rng, ErrClosed
	}
	j.mu.RLock()
	var s *stream
	ep := j.idx.epoch(epoch)
	if ep != nil {
		s = ep.streams[topic]
	}
	if s == nil {
		j.mu.RUnlock()
		return rng, nil
	}
	rng.Known = true
	if h := s.held(); len(h) > 0 {
		rng.First, rng.Last = h[0].seq, h[len(h)-1].last()
	}
	rng.Final, rng.Closed, rng.Clean = s.last, ep != j.cur, ep.clean
	rng.Hole, _ = s.firstHole(from, to)
	rng.Holes = len(s.holes)
	j.mu.RUnlock()
	if fn == nil || from > to || rng.Last == 0 || to < rng.First || from > rng.Last {
		return rng, nil
	}
	err := j.read(&rng, ep, s, from, to, fn)
	if rng.Skipped > 0 { // damage found or skipped: the holes may have grown
		j.mu.RLock()
		rng.Hole, _ = s.firstHole(from, to)
		rng.Holes = len(s.holes)
		j.mu.RUnlock()
	}
	return rng, err
}

// read is Read's loop over the batches of s overlapping [from, to].
func (j *Journal) read(rng *Range, ep *epochState, s *stream, from, to uint64, fn func(Batch) bool) error {
	epoch, topic := ep.epoch, s.topic
	r := readerPool.Get().(*reader)
	r.fs = j.fs
	defer r.release()
	next := max(from, 1)
	for {
		if !r.copyEntries(j, s, next, to) {
			return nil
		}
		for k := range r.ents {
			e := &r.ents[k]
			if e.damaged {
				rng.Skipped++ // a known hole
				continue
			}
			b, err := r.record(k)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					// Deleted by retention since the copy, or, if the index
					// still has it, by someone else: then it is damage.
					if j.damaged(ep, s, e) {
						rng.Skipped++
						j.rl.Warn("read-missing", "journal: a segment file the index holds is missing; its records are a hole from now on",
							zap.Uint64("epoch", epoch), zap.String("topic", topic), zap.Uint32("segment", e.seg))
					}
					continue
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					return fmt.Errorf("journal: read segment %d: %w", e.seg, err)
				}
			}
			rec, _, derr := decodeRecord(b, j.pub)
			if err != nil || derr != nil || rec.typ != recBatch || rec.h.Epoch != epoch || rec.h.Seq != e.seq ||
				rec.h.Count != e.count || string(rec.topic) != topic {
				if mutation.Is(mutation.HideDamage) {
					continue
				}
				rng.Skipped++
				j.damaged(ep, s, e) // false if evicted meanwhile: then nothing is lost
				j.rl.Warn("read-corrupt", "journal: a batch failed its checks on read; its records are a hole from now on",
					zap.Uint64("epoch", epoch), zap.String("topic", topic), zap.Uint64("from", e.seq), zap.Uint64("to", e.last()),
					zap.Uint32("segment", e.seg), zap.Uint32("offset", e.off), zap.Error(errors.Join(err, derr)))
				continue
			}
			if !fn(Batch{Frames: envelope.Frames{rec.topic, rec.header, rec.payload}, Header: rec.h}) {
				return nil
			}
		}
		last := r.ents[len(r.ents)-1].last()
		if last >= to {
			return nil
		}
		next = last + 1
	}
}

// damaged records that a read found the batch e of stream s damaged,
// unless retention dropped it meanwhile: it is flagged in the index, its
// sequences become a hole, and Stats counts it once, however many reads
// find it. It reports whether e is (now) a known hole.
func (j *Journal) damaged(ep *epochState, s *stream, e *entry) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.idx.epoch(ep.epoch) != ep || ep.streams[s.topic] != s || j.idx.seg(e.seg) == nil {
		return false // evicted or forgotten meanwhile
	}
	if j.idx.markDamaged(s, e.seq) {
		j.st.corrupt.Add(1)
	}
	_, known := s.firstHole(e.seq, e.seq)
	return known
}

// reader holds the buffers of one Read; they are pooled.
type reader struct {
	ents  []entry
	paths []string // paths[k] is the file of ents[k]'s segment
	buf   []byte
	win   []byte
	wSeg  uint32
	wOff  int64
	fs    FS
	f     File
	fSeg  uint32
	fErr  error
}

var readerPool = sync.Pool{New: func() any {
	return &reader{ents: make([]entry, 0, readChunk), paths: make([]string, 0, readChunk), buf: make([]byte, readBuffer)}
}}

func (r *reader) release() {
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.fSeg, r.fErr, r.win, r.wSeg, r.fs = nil, 0, nil, nil, 0, nil
	clear(r.paths)
	r.ents, r.paths = r.ents[:0], r.paths[:0]
	if cap(r.buf) > 4*readBuffer {
		r.buf = make([]byte, readBuffer)
	}
	readerPool.Put(r)
}

// copyEntries copies the next held entries of s from sequence next up to
// to, with their segments' paths, under the index lock. It reports false
// when there are none.
func (r *reader) copyEntries(j *Journal, s *stream, next, to uint64) bool {
	clear(r.paths)
	r.ents, r.paths = r.ents[:0], r.paths[:0]
	j.mu.RLock()
	defer j.mu.RUnlock()
	h := s.held()
	var seg *segment
	for i := s.find(next); i < len(h) && len(r.ents) < readChunk && h[i].seq <= to; i++ {
		e := h[i]
		if seg == nil || seg.id != e.seg {
			if seg = j.idx.seg(e.seg); seg == nil {
				break
			}
		}
		r.ents = append(r.ents, e)
		r.paths = append(r.paths, seg.path)
	}
	return len(r.ents) > 0
}

// record returns the bytes of the record of ents[k], reading it (and the
// batches after it that fit in the buffer) if the window lacks it.
func (r *reader) record(k int) ([]byte, error) {
	e := &r.ents[k]
	start, end := int64(e.off), int64(e.off)+int64(e.size)
	if e.seg == r.wSeg && start >= r.wOff && end <= r.wOff+int64(len(r.win)) {
		return r.win[start-r.wOff : end-r.wOff], nil
	}
	if r.fSeg != e.seg || (r.f == nil && r.fErr == nil) {
		if r.f != nil {
			r.f.Close()
		}
		r.f, r.fErr = nil, nil
		r.fSeg = e.seg
		f, err := r.fs.OpenFile(r.paths[k], os.O_RDONLY, 0)
		if err != nil {
			r.fErr = err
			return nil, err
		}
		r.f = f
	}
	if r.f == nil {
		return nil, r.fErr
	}
	limit := max(int64(cap(r.buf)), end-start)
	for n := k + 1; n < len(r.ents); n++ {
		x := &r.ents[n]
		xs, xe := int64(x.off), int64(x.off)+int64(x.size)
		if x.seg != e.seg || xs < end || xs-end > readGap || xe-start > limit {
			break
		}
		end = xe
	}
	if int64(cap(r.buf)) < end-start {
		r.buf = make([]byte, end-start)
	}
	n, err := r.f.ReadAt(r.buf[:end-start], start)
	r.win, r.wOff, r.wSeg = r.buf[:n], start, e.seg
	if n < int(e.size) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return r.win[:e.size], nil
}
