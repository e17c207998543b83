package recovery

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"

	"github.com/syncmq/syncmq/envelope"
)

// HistoryConfig bounds what a History retains.
type HistoryConfig struct {
	// MaxBytes is the memory budget of the whole History in bytes: the
	// arena chunks batches are copied into plus their index, whatever the
	// number of topics. When a batch would exceed it, the oldest batches of
	// the topic holding the most memory are evicted first, so a busy topic
	// cannot push a quiet one's history out. Required when retention is on.
	MaxBytes int64
	// MaxTopicBytes caps the memory of one topic; 0 means MaxBytes.
	MaxTopicBytes int64
	// MaxMessages is the number of records retained per topic: the oldest
	// batches of a topic are evicted while the rest still hold at least
	// MaxMessages records, so a topic holds at least the last MaxMessages
	// records and at most one batch more (memory limits permitting). 0
	// turns retention off: AppendBatch stores nothing and every Batches
	// call reports an unknown topic.
	MaxMessages int
	// MaxTopics is the most topics retained. Appending to a new topic when
	// the limit is reached forgets the topic appended to least recently.
	MaxTopics int
}

// DefaultHistoryConfig returns 128 MiB for the whole History, 100,000
// records per topic and 10,000 topics.
func DefaultHistoryConfig() HistoryConfig {
	return HistoryConfig{MaxBytes: 128 << 20, MaxMessages: 100_000, MaxTopics: 10_000}
}

// MinHistoryBytes is the smallest MaxBytes accepted while retention is
// on: one full-size batch must fit with room to spare.
const MinHistoryBytes = 1 << 20

// Validate reports every problem of c. Errors wrap ErrConfig.
func (c HistoryConfig) Validate() error {
	var errs []error
	if c.MaxMessages < 0 {
		errs = append(errs, fmt.Errorf("%w: history MaxMessages %d is negative", ErrConfig, c.MaxMessages))
	}
	if c.MaxMessages > 0 && c.MaxBytes < MinHistoryBytes {
		errs = append(errs, fmt.Errorf("%w: history MaxBytes %d is below %d", ErrConfig, c.MaxBytes, MinHistoryBytes))
	}
	if c.MaxTopicBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: history MaxTopicBytes %d is negative", ErrConfig, c.MaxTopicBytes))
	}
	if c.MaxTopics < 1 {
		errs = append(errs, fmt.Errorf("%w: history MaxTopics %d must be at least 1", ErrConfig, c.MaxTopics))
	}
	return errors.Join(errs...)
}

// Arena chunk sizes: a topic's chunks grow from minChunk to maxChunk as it
// retains more, so ten thousand quiet topics cost ten thousand small
// chunks, not ten thousand large ones. A batch larger than maxChunk gets a
// chunk of its own size.
const (
	minChunk = 4 << 10
	maxChunk = 64 << 10
)

// entrySize is what one index entry costs, charged to the budget.
const entrySize = 32

// batchEntry indexes one retained batch. It holds no pointers, so a large
// index costs the garbage collector nothing to scan.
type batchEntry struct {
	first uint64 // sequence of the first record
	chunk uint64 // topic-local chunk number, see topicHist.chunkBase
	count uint32 // records
	off   uint32 // header, then payload, at chunks[chunk][off:]
	n     uint32 // payload bytes
}

// topicHist is the retained history of one topic: a ring of batch entries
// over a FIFO of arena chunks. Sequences in the ring are contiguous.
type topicHist struct {
	name    string
	ents    []batchEntry // ring buffer; len(ents) is its capacity
	head    int          // index of the oldest entry
	n       int          // entries held
	records int          // records held
	charged int64        // chunk capacity plus index, counted against the budgets

	chunks    []chunk // FIFO of chunks; chunks[0] has number chunkBase
	chunkBase uint64
	used      int // bytes used in the last chunk

	lastSeq uint64 // last sequence appended, retained or not

	heapIdx    int        // position in History.byMem
	prev, next *topicHist // recency list, most recent first
}

func (th *topicHist) at(i int) *batchEntry {
	j := th.head + i
	if j >= len(th.ents) {
		j -= len(th.ents)
	}
	return &th.ents[j]
}

// History retains the most recent batches of each topic at the publisher,
// so that subscribers can repair gaps from them. It keeps whole batches
// (the 56-byte envelope header and the payload as they were sent), so
// retaining a batch takes one lock and one copy into memory that is
// already mapped once the History holds its budget, and replaying it
// needs no re-encoding.
//
// Sequences of a topic must be appended in increasing order; the retained
// batches of a topic always hold a contiguous run of sequences, so
// "everything from the first held sequence to the last" is available.
//
// Memory is bounded by MaxBytes whatever the number of topics: batches are
// copied into arena chunks sized to each topic's traffic, the chunks and
// the index are charged to the budget, and chunks freed by eviction are
// reused (arena.go). Once the budget is reached AppendBatch allocates
// nothing. The arena's memory is outside the Go heap on Linux; Close
// returns it at once, and a History dropped without Close returns it when
// the garbage collector finds it unreachable.
//
// Concurrency: a History is safe for one writer calling AppendBatch and
// any number of concurrent readers calling Batches, Bounds and Stats. A
// Batches callback runs under the read lock: it must not call AppendBatch,
// and it should copy what it needs and return, since the writer waits for
// it.
type History struct {
	cfg HistoryConfig

	mu     sync.RWMutex
	topics map[string]*topicHist
	byMem  memHeap    // topics by charged bytes, largest first
	lru    *topicHist // most recently appended topic
	tail   *topicHist // least recently appended topic
	arena  *arena
	clean  runtime.Cleanup // unmaps the arena of a History dropped without Close
	closed bool

	charged       int64
	records       int
	batches       int
	evicted       uint64
	evictedTopics uint64
	rejected      uint64
}

// NewHistory returns an empty History. It fails if cfg is invalid.
func NewHistory(cfg HistoryConfig) (*History, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxTopicBytes == 0 || cfg.MaxTopicBytes > cfg.MaxBytes {
		cfg.MaxTopicBytes = cfg.MaxBytes
	}
	h := &History{cfg: cfg, topics: make(map[string]*topicHist), arena: newArena(cfg.MaxBytes)}
	h.clean = runtime.AddCleanup(h, func(a *arena) { a.close() }, h.arena)
	return h, nil
}

// Close returns the History's memory. From then on AppendBatch returns
// ErrClosed and Batches reports every topic unknown; Stats still works.
// Close waits for running Batches callbacks. Idempotent.
func (h *History) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	h.clean.Stop()
	for _, th := range h.topics {
		th.chunks, th.ents, th.n, th.head = nil, nil, 0, 0
	}
	h.arena.close()
}

// Config returns the configuration the History was created with.
func (h *History) Config() HistoryConfig { return h.cfg }

// AppendBatch retains a copy of one DATA envelope of topic: header is its
// 56-byte header frame, payload its payload frame, and the envelope holds
// count records from sequence first on. It evicts the oldest batches of
// the topic as needed to stay within MaxMessages and MaxTopicBytes, then
// those of the largest topics to stay within MaxBytes, and the least
// recently appended topic if topic is new and MaxTopics are already held.
//
// Sequences of a topic must increase: a first that is 0 or not above the
// last sequence appended is rejected with ErrOutOfOrder and changes
// nothing. A batch that skips ahead (first is not last+1) is accepted, but
// since retained history is kept contiguous, the older batches of the
// topic are evicted first. A batch larger than MaxTopicBytes is rejected
// with ErrTooLarge; it still counts as appended (the next sequence must be
// above it) and, for contiguity, the topic's older batches are evicted.
//
// With retention off (MaxMessages 0) AppendBatch does nothing and returns nil.
func (h *History) AppendBatch(topic string, first uint64, count int, header, payload []byte) error {
	if h.cfg.MaxMessages == 0 {
		return nil
	}
	if count < 1 || len(header) != envelope.HeaderSize {
		return fmt.Errorf("%w: topic %q batch of %d records with a %d-byte header", ErrConfig, topic, count, len(header))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}

	th := h.topics[topic]
	if first == 0 || (th != nil && first <= th.lastSeq) {
		h.rejected++
		last := uint64(0)
		if th != nil {
			last = th.lastSeq
		}
		return fmt.Errorf("%w: topic %q seq %d after %d", ErrOutOfOrder, topic, first, last)
	}
	if th == nil {
		th = h.addTopic(topic)
	}
	h.touch(th)
	if th.n > 0 && first != th.lastSeq+1 {
		h.evictAll(th)
	}
	th.lastSeq = first + uint64(count) - 1
	size := envelope.HeaderSize + len(payload)
	if int64(size)+entrySize > h.cfg.MaxTopicBytes || uint64(len(payload)) > math.MaxUint32 {
		h.evictAll(th)
		h.rejected++
		return fmt.Errorf("%w: topic %q seq %d has %d bytes, limit %d", ErrTooLarge, topic, first, size, h.cfg.MaxTopicBytes)
	}

	// The topic's own limits first, then the shared budget.
	for th.n > 0 && th.records-int(th.at(0).count) >= h.cfg.MaxMessages-count {
		h.evictOldest(th)
	}
	grow := h.growth(th, size)
	for th.n > 0 && th.charged+grow > h.cfg.MaxTopicBytes {
		h.evictOldest(th)
		grow = h.growth(th, size)
	}
	for h.charged+grow > h.cfg.MaxBytes {
		big := h.byMem[0]
		switch {
		case big.n > 0:
			h.evictOldest(big)
		case len(big.chunks) > 0:
			h.releaseChunks(big, true) // an empty topic's spare chunk
			h.fix(big)
		default:
			grow = 0 // only indexes left: the budget's floor holds this batch
		}
		if grow != 0 {
			grow = h.growth(th, size)
		} else {
			break
		}
	}

	if len(th.chunks) == 0 || th.used+size > len(th.chunks[len(th.chunks)-1].b) {
		h.addChunk(th, size)
	}
	ci := len(th.chunks) - 1
	off := th.used
	c := th.chunks[ci].b
	copy(c[off:], header)
	copy(c[off+envelope.HeaderSize:], payload)
	th.used += size

	if th.n == len(th.ents) {
		h.growIndex(th)
	}
	*th.at(th.n) = batchEntry{first: first, chunk: th.chunkBase + uint64(ci), count: uint32(count), off: uint32(off), n: uint32(len(payload))}
	th.n++
	th.records += count
	h.records += count
	h.batches++
	h.fix(th)
	return nil
}

// growth is how many bytes appending a batch of size bytes would add to
// th's charge: a new chunk if the last one cannot take it, and a larger
// index if the ring is full.
func (h *History) growth(th *topicHist, size int) int64 {
	var g int64
	if len(th.chunks) == 0 || th.used+size > len(th.chunks[len(th.chunks)-1].b) {
		g += int64(chunkSize(th, size))
	}
	if th.n == len(th.ents) {
		g += int64(indexCap(th, h.cfg.MaxMessages)-len(th.ents)) * entrySize
	}
	return g
}

// chunkSize is the size of the next chunk of th for a batch of size
// bytes: double the last one, between minChunk and maxChunk, and large
// enough for the batch.
func chunkSize(th *topicHist, size int) int {
	c := minChunk
	if k := len(th.chunks); k > 0 {
		c = min(2*len(th.chunks[k-1].b), maxChunk)
	}
	for c < size && c < maxChunk {
		c *= 2
	}
	return max(c, size)
}

func indexCap(th *topicHist, limit int) int {
	return min(max(2*len(th.ents), 16), limit+1)
}

func (h *History) addChunk(th *topicHist, size int) {
	c := h.arena.alloc(chunkSize(th, size))
	th.chunks = append(th.chunks, c)
	th.used = 0
	h.charge(th, int64(len(c.b)))
}

// growIndex doubles the ring's capacity, keeping entries in order.
func (h *History) growIndex(th *topicHist) {
	ents := make([]batchEntry, indexCap(th, h.cfg.MaxMessages))
	for i := 0; i < th.n; i++ {
		ents[i] = *th.at(i)
	}
	h.charge(th, int64(len(ents)-len(th.ents))*entrySize)
	th.ents, th.head = ents, 0
}

func (h *History) charge(th *topicHist, n int64) {
	th.charged += n
	h.charged += n
}

func (h *History) addTopic(name string) *topicHist {
	if len(h.topics) >= h.cfg.MaxTopics && h.tail != nil {
		// Forget the least recently appended topic.
		old := h.tail
		h.evictAll(old)
		h.releaseChunks(old, true)
		h.charge(old, -int64(len(old.ents))*entrySize)
		old.ents = nil
		h.unlink(old)
		heap.Remove(&h.byMem, old.heapIdx)
		delete(h.topics, old.name)
		h.evictedTopics++
	}
	th := &topicHist{name: name}
	h.topics[name] = th
	heap.Push(&h.byMem, th)
	return th
}

// touch moves th to the front of the recency list.
func (h *History) touch(th *topicHist) {
	if h.lru == th {
		return
	}
	h.unlink(th)
	th.next = h.lru
	if h.lru != nil {
		h.lru.prev = th
	}
	h.lru = th
	if h.tail == nil {
		h.tail = th
	}
}

func (h *History) unlink(th *topicHist) {
	if th.prev != nil {
		th.prev.next = th.next
	} else if h.lru == th {
		h.lru = th.next
	}
	if th.next != nil {
		th.next.prev = th.prev
	} else if h.tail == th {
		h.tail = th.prev
	}
	th.prev, th.next = nil, nil
}

func (h *History) evictOldest(th *topicHist) {
	e := th.at(0)
	th.records -= int(e.count)
	h.records -= int(e.count)
	h.batches--
	h.evicted += uint64(e.count)
	th.head++
	if th.head == len(th.ents) {
		th.head = 0
	}
	th.n--
	h.releaseChunks(th, false)
	h.fix(th)
}

func (h *History) evictAll(th *topicHist) {
	h.evicted += uint64(th.records)
	h.records -= th.records
	h.batches -= th.n
	th.n, th.head, th.records = 0, 0, 0
	h.releaseChunks(th, false)
	h.fix(th)
}

// releaseChunks recycles the chunks no retained entry refers to. The last
// chunk is kept (and rewound when th is empty) unless all is set.
func (h *History) releaseChunks(th *topicHist, all bool) {
	if len(th.chunks) == 0 {
		return
	}
	keep := th.chunkBase + uint64(len(th.chunks)) - 1
	switch {
	case all:
		keep = th.chunkBase + uint64(len(th.chunks))
	case th.n > 0:
		keep = th.at(0).chunk
	default:
		th.used = 0
	}
	drop := int(keep - th.chunkBase)
	if drop == 0 {
		return
	}
	for i := 0; i < drop; i++ {
		h.charge(th, -int64(len(th.chunks[i].b)))
		h.arena.release(th.chunks[i])
		th.chunks[i] = chunk{}
	}
	rest := copy(th.chunks, th.chunks[drop:])
	clear(th.chunks[rest:])
	th.chunks = th.chunks[:rest]
	th.chunkBase = keep
	if len(th.chunks) == 0 {
		th.used = 0
	}
}

func (h *History) fix(th *topicHist) {
	if th.heapIdx >= 0 && th.heapIdx < len(h.byMem) && h.byMem[th.heapIdx] == th {
		heap.Fix(&h.byMem, th.heapIdx)
	}
}

// memHeap orders topics by charged bytes, largest first.
type memHeap []*topicHist

func (m memHeap) Len() int           { return len(m) }
func (m memHeap) Less(i, j int) bool { return m[i].charged > m[j].charged }
func (m memHeap) Swap(i, j int) {
	m[i], m[j] = m[j], m[i]
	m[i].heapIdx, m[j].heapIdx = i, j
}
func (m *memHeap) Push(x any) {
	th := x.(*topicHist)
	th.heapIdx = len(*m)
	*m = append(*m, th)
}
func (m *memHeap) Pop() any {
	old := *m
	th := old[len(old)-1]
	old[len(old)-1] = nil
	*m = old[:len(old)-1]
	th.heapIdx = -1
	return th
}

// Bounds describes what a History holds of one topic.
type Bounds struct {
	// First and Last are the oldest and newest sequence held; both 0 when
	// nothing is held.
	First, Last uint64
	// Published is the last sequence appended, held or not.
	Published uint64
	// Known is false when the topic was never appended to (or forgotten
	// under MaxTopics, or retention is off).
	Known bool
}

// Batch is one retained batch as Batches hands it over. Header and
// Payload alias the History's memory: they are valid only during the
// callback and must not be modified.
type Batch struct {
	First  uint64 // sequence of the first record
	Count  int    // records
	Header []byte // the 56-byte envelope header as it was sent
	// Payload is the envelope's payload frame: the raw record for a
	// single-record batch, else length-prefixed records.
	Payload []byte
}

// Last returns the sequence of the batch's last record.
func (b Batch) Last() uint64 { return b.First + uint64(b.Count) - 1 }

// Batches calls fn for each retained batch of topic that holds a sequence
// in [from, to], in increasing sequence order, until fn returns false. The
// first and last batch may extend outside [from, to]. fn may be nil to
// only query the bounds, which Batches returns as they were when it
// started.
//
// fn runs under the History's read lock: it must not call AppendBatch, and
// it should copy what it needs and return.
func (h *History) Batches(topic string, from, to uint64, fn func(Batch) bool) Bounds {
	h.mu.RLock()
	defer h.mu.RUnlock()
	th := h.topics[topic]
	if th == nil || h.closed {
		return Bounds{}
	}
	b := Bounds{Published: th.lastSeq, Known: true}
	if th.n == 0 {
		return b
	}
	b.First = th.at(0).first
	last := th.at(th.n - 1)
	b.Last = last.first + uint64(last.count) - 1
	if fn == nil || to < b.First || from > b.Last || from > to {
		return b
	}
	// The first batch whose last sequence reaches from.
	i := sort.Search(th.n, func(i int) bool {
		e := th.at(i)
		return e.first+uint64(e.count)-1 >= from
	})
	for ; i < th.n; i++ {
		e := th.at(i)
		if e.first > to {
			break
		}
		c := th.chunks[e.chunk-th.chunkBase].b
		hdrEnd := e.off + envelope.HeaderSize
		end := hdrEnd + e.n
		if !fn(Batch{First: e.first, Count: int(e.count), Header: c[e.off:hdrEnd:hdrEnd], Payload: c[hdrEnd:end:end]}) {
			break
		}
	}
	return b
}

// Bounds returns what is held of topic.
func (h *History) Bounds(topic string) Bounds { return h.Batches(topic, 0, 0, nil) }

// HistoryStats are a History's gauges and counters.
type HistoryStats struct {
	// Topics, Batches and Messages are what is retained now.
	Topics   int
	Batches  int
	Messages int
	// Bytes is the memory charged to the budget: arena chunks and index.
	Bytes int64
	// Mapped is the memory the arena holds for chunks, in use or ready for
	// reuse: at most MaxBytes and a few blocks more.
	Mapped int64
	// Evicted counts records dropped to stay within the limits.
	Evicted uint64
	// EvictedTopics counts topics forgotten to stay within MaxTopics.
	EvictedTopics uint64
	// Rejected counts AppendBatch calls refused with ErrOutOfOrder or ErrTooLarge.
	Rejected uint64
}

// Stats returns the current gauges and counters.
func (h *History) Stats() HistoryStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return HistoryStats{
		Topics:        len(h.topics),
		Batches:       h.batches,
		Messages:      h.records,
		Bytes:         h.charged,
		Mapped:        h.arena.mapped(),
		Evicted:       h.evicted,
		EvictedTopics: h.evictedTopics,
		Rejected:      h.rejected,
	}
}
