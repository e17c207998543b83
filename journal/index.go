package journal

import (
	"slices"
	"sort"
)

// entry locates one stored batch. It holds no pointers, so a large index
// costs the garbage collector nothing to scan. 32 bytes.
type entry struct {
	seq     uint64 // first sequence of the batch
	time    int64  // envelope publish time, Unix ns
	seg     uint32 // segment id
	off     uint32 // record offset in the segment
	size    uint32 // record size in bytes, head included
	count   uint16 // records in the batch
	damaged bool   // the record cannot be read back: its sequences are a hole
}

func (e *entry) last() uint64 { return e.seq + uint64(e.count) - 1 }

// stream is the index of one (epoch, topic): the batches still held,
// oldest first, in ents[head:]. Sequences increase; they are contiguous
// unless a damaged record was skipped. holes lists, in order, the runs of
// sequences from the first held batch up to last that were appended but
// cannot be read: damaged batches, and sequences missing between held
// batches or after the newest one.
type stream struct {
	ep      *epochState
	topic   string
	ents    []entry
	head    int
	records int64  // records held
	bytes   int64  // record bytes held
	last    uint64 // last sequence appended or recovered, held or not
	wlast   uint64 // last sequence staged; only the writer uses it
	curSeg  uint32 // segment of the newest batch (index into segStreams below)
	curIdx  int    // position of this stream in that segment's streams
	holes   []Hole
}

func (s *stream) held() []entry { return s.ents[s.head:] }

func (s *stream) push(e entry) {
	if len(s.ents) == cap(s.ents) && s.head > 0 && s.head >= len(s.ents)/2 {
		n := copy(s.ents, s.ents[s.head:])
		s.ents = s.ents[:n]
		s.head = 0
	}
	s.ents = append(s.ents, e)
	s.records += int64(e.count)
	s.bytes += int64(e.size)
}

func (s *stream) popFront() entry {
	e := s.ents[s.head]
	s.head++
	if s.head == len(s.ents) {
		s.ents, s.head = s.ents[:0], 0
	}
	s.records -= int64(e.count)
	s.bytes -= int64(e.size)
	return e
}

// find returns the index in held() of the first batch whose last
// sequence is at least seq.
func (s *stream) find(seq uint64) int {
	h := s.held()
	return sort.Search(len(h), func(i int) bool { return h[i].last() >= seq })
}

// epochState is one publisher incarnation in the journal.
type epochState struct {
	epoch   uint64
	streams map[string]*stream
	order   []*stream // creation order, for stable listings
	clean   bool      // ended with an end record
	ends    int       // end records of this epoch in live segments
}

// heldBatches returns how many batches the epoch's streams hold.
func (ep *epochState) heldBatches() int {
	n := 0
	for _, s := range ep.order {
		n += len(s.held())
	}
	return n
}

func (ep *epochState) stream(topic []byte) *stream {
	if s := ep.streams[string(topic)]; s != nil {
		return s
	}
	return ep.streamString(string(topic))
}

func (ep *epochState) streamString(topic string) *stream {
	if s := ep.streams[topic]; s != nil {
		return s
	}
	s := &stream{ep: ep, topic: topic}
	ep.streams[s.topic] = s
	ep.order = append(ep.order, s)
	return s
}

// segStream records that a segment holds batches of a stream, and the
// last sequence of that stream in the segment.
type segStream struct {
	s    *stream
	last uint64
}

// segment is one log file.
type segment struct {
	id      uint32
	path    string
	size    int64 // bytes of valid data, header included
	live    int   // batches of this segment still held by some stream
	streams []segStream
	ends    []endRef // end records in this segment
	scanned bool     // indexed by scanning (no valid snapshot)
}

// endRef locates an end record.
type endRef struct {
	off, size uint32
	ep        *epochState
}

const (
	segExt  = ".log"
	snapExt = ".idx"
)

func (seg *segment) snapPath() string {
	return seg.path[:len(seg.path)-len(segExt)] + snapExt
}

// index is the in-memory state the Journal guards with mu.
type index struct {
	epochs   []*epochState // by epoch, ascending
	segs     []*segment    // by id, ascending; the last is the active one once open
	bytes    int64         // sum of segment sizes
	batch    int64         // batches held
	recs     int64         // records held
	holes    int           // holes of all streams
	holeRecs int64         // sequences in them
}

func (x *index) epoch(e uint64) *epochState {
	i := sort.Search(len(x.epochs), func(i int) bool { return x.epochs[i].epoch >= e })
	if i < len(x.epochs) && x.epochs[i].epoch == e {
		return x.epochs[i]
	}
	return nil
}

func (x *index) addEpoch(e uint64) *epochState {
	if ep := x.epoch(e); ep != nil {
		return ep
	}
	ep := &epochState{epoch: e, streams: make(map[string]*stream)}
	i := sort.Search(len(x.epochs), func(i int) bool { return x.epochs[i].epoch > e })
	x.epochs = append(x.epochs, nil)
	copy(x.epochs[i+1:], x.epochs[i:])
	x.epochs[i] = ep
	return ep
}

func (x *index) seg(id uint32) *segment {
	i := sort.Search(len(x.segs), func(i int) bool { return x.segs[i].id >= id })
	if i < len(x.segs) && x.segs[i].id == id {
		return x.segs[i]
	}
	return nil
}

// add indexes a batch stored in seg.
func (x *index) add(seg *segment, s *stream, e entry) {
	s.push(e)
	if s.last < e.last() {
		s.last = e.last()
	}
	if s.curSeg != seg.id || s.curIdx >= len(seg.streams) || seg.streams[s.curIdx].s != s {
		s.curSeg, s.curIdx = seg.id, len(seg.streams)
		seg.streams = append(seg.streams, segStream{s: s})
	}
	seg.streams[s.curIdx].last = max(seg.streams[s.curIdx].last, e.last())
	seg.live++
	x.batch++
	x.recs += int64(e.count)
}

// dropFront removes the oldest held batch of s and returns its segment
// if that segment now holds nothing.
func (x *index) dropFront(s *stream) (emptied *segment) {
	e := s.popFront()
	x.batch--
	x.recs -= int64(e.count)
	x.pruneHoles(s)
	if seg := x.seg(e.seg); seg != nil {
		seg.live--
		if seg.live == 0 {
			return seg
		}
	}
	return nil
}

// removeSeg forgets seg: drops the held batches it stores (they are at
// the front of their streams, since older segments went first or held
// nothing) and takes it out of the list. It returns the batches dropped.
func (x *index) removeSeg(seg *segment) int {
	dropped := 0
	for _, ss := range seg.streams {
		s := ss.s
		for len(s.held()) > 0 && s.held()[0].seg == seg.id {
			e := s.popFront()
			x.batch--
			x.recs -= int64(e.count)
			dropped++
		}
		x.pruneHoles(s)
	}
	i := sort.Search(len(x.segs), func(i int) bool { return x.segs[i].id >= seg.id })
	if i < len(x.segs) && x.segs[i] == seg {
		x.segs = append(x.segs[:i], x.segs[i+1:]...)
		x.bytes -= seg.size
	}
	seg.live = 0
	for _, e := range seg.ends {
		e.ep.ends--
	}
	return dropped
}

// Hole is a run of sequences, From to To inclusive, of one (epoch,
// topic) stream that the journal recorded as appended (its index, a
// segment's snapshot or the epoch's end record says so) but cannot read
// back: the record was damaged or cut off on disk, or is missing between
// the batches it still holds. Read skips them; Range.Hole reports them,
// and a recovery server answers them as lost, so a subscriber reports
// them lost instead of silently missing them.
type Hole struct{ From, To uint64 }

// Len returns the number of sequences in h.
func (h Hole) Len() uint64 { return h.To - h.From + 1 }

// addHole records that from..to of s cannot be read, merging it with the
// holes it touches. Called with mu held (or alone, at Open).
func (x *index) addHole(s *stream, from, to uint64) {
	if from == 0 || to < from {
		return
	}
	// The holes that overlap or touch from..to are merged into one.
	i := sort.Search(len(s.holes), func(i int) bool { return s.holes[i].To+1 >= from })
	k := i
	h := Hole{From: from, To: to}
	for ; k < len(s.holes) && s.holes[k].From <= to+1; k++ {
		h.From, h.To = min(h.From, s.holes[k].From), max(h.To, s.holes[k].To)
		x.holes--
		x.holeRecs -= int64(s.holes[k].Len())
	}
	s.holes = slices.Replace(s.holes, i, k, h)
	x.holes++
	x.holeRecs += int64(h.Len())
}

// pruneHoles forgets the holes of s before its oldest held batch (they
// are out of retention like the batches before them), or all of them if
// it holds nothing.
func (x *index) pruneHoles(s *stream) {
	if len(s.holes) == 0 {
		return
	}
	first := uint64(1<<64 - 1)
	if h := s.held(); len(h) > 0 {
		first = h[0].seq
	}
	n := 0
	for n < len(s.holes) && s.holes[n].To < first {
		x.holes--
		x.holeRecs -= int64(s.holes[n].Len())
		n++
	}
	if n < len(s.holes) && s.holes[n].From < first {
		x.holeRecs -= int64(first - s.holes[n].From)
		s.holes[n].From = first
	}
	s.holes = slices.Delete(s.holes, 0, n)
}

// firstHole returns the first hole of s that overlaps from..to.
func (s *stream) firstHole(from, to uint64) (Hole, bool) {
	if from > to {
		return Hole{}, false
	}
	i := sort.Search(len(s.holes), func(i int) bool { return s.holes[i].To >= from })
	if i < len(s.holes) && s.holes[i].From <= to {
		return s.holes[i], true
	}
	return Hole{}, false
}

// findHoles records the holes of s that its held batches show: damaged
// batches, sequences missing between two held batches, and sequences
// after the newest held batch up to s.last (which an end record or a
// snapshot recorded). Called at Open, after retention.
func (x *index) findHoles(s *stream) {
	h := s.held()
	if len(h) == 0 {
		return
	}
	for i := range h {
		if i > 0 && h[i].seq > h[i-1].last()+1 {
			x.addHole(s, h[i-1].last()+1, h[i].seq-1)
		}
		if h[i].damaged {
			x.addHole(s, h[i].seq, h[i].last())
		}
	}
	if newest := h[len(h)-1].last(); s.last > newest {
		x.addHole(s, newest+1, s.last)
	}
}

// markDamaged flags the held batch of s starting at seq, found damaged by
// a read, and records its hole. It reports whether it was not known yet.
// Called with mu held.
func (x *index) markDamaged(s *stream, seq uint64) bool {
	h := s.held()
	i := s.find(seq)
	if i >= len(h) || h[i].seq != seq || h[i].damaged {
		return false
	}
	h[i].damaged = true
	x.addHole(s, h[i].seq, h[i].last())
	return true
}
