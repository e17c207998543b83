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
	// First and Last are the first and last sequences held when Read
	// started; both 0 if the stream holds nothing.
	First, Last uint64
	// Final is the last sequence ever appended to the stream, held or not
	// (evicted, or lost with a torn tail).
	Final uint64
	// Closed says the epoch is not the active one: nothing more will be
	// appended and Final is the epoch's final sequence of the topic.
	Closed bool
	// Clean says the epoch was ended by Close or Begin (an end record),
	// not by a crash; Final of a crashed epoch is the last sequence of
	// its last valid record.
	Clean bool
	// Skipped counts batches in the range that failed their checksums
	// when read and were not passed to fn.
	Skipped int
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
// the duplicates. Sequences missing between two batches (a damaged record
// skipped at Open, or by this Read, counted in Range.Skipped) show as a
// jump. fn may be nil to query only the Range.
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
	j.mu.RUnlock()
	if fn == nil || from > to || rng.Last == 0 || to < rng.First || from > rng.Last {
		return rng, nil
	}

	r := readerPool.Get().(*reader)
	r.fs = j.fs
	defer r.release()
	next := max(from, 1)
	for {
		if !r.copyEntries(j, s, next, to) {
			return rng, nil
		}
		for k := range r.ents {
			e := &r.ents[k]
			b, err := r.record(k)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // the segment was deleted since the copy
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					return rng, fmt.Errorf("journal: read segment %d: %w", e.seg, err)
				}
			}
			rec, _, derr := decodeRecord(b, j.pub)
			if err != nil || derr != nil || rec.typ != recBatch || rec.h.Epoch != epoch || rec.h.Seq != e.seq ||
				rec.h.Count != e.count || string(rec.topic) != topic {
				rng.Skipped++
				j.st.corrupt.Add(1)
				j.rl.Warn("read-corrupt", "journal: skipped a damaged batch on read",
					zap.Uint32("segment", e.seg), zap.Uint32("offset", e.off), zap.Uint64("seq", e.seq), zap.Error(errors.Join(err, derr)))
				continue
			}
			if !fn(Batch{Frames: envelope.Frames{rec.topic, rec.header, rec.payload}, Header: rec.h}) {
				return rng, nil
			}
		}
		last := r.ents[len(r.ents)-1].last()
		if last >= to {
			return rng, nil
		}
		next = last + 1
	}
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
