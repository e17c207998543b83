package recovery

import (
	"fmt"
	"math"
	"sync"
)

// HistoryConfig bounds what a History retains.
type HistoryConfig struct {
	// MaxMessages is the most messages retained per topic. 0 turns
	// retention off: Append stores nothing and every Range reports an
	// unknown topic.
	MaxMessages int
	// MaxBytes is the most payload bytes retained per topic; 0 means no
	// byte limit. Memory actually used per topic is somewhat higher: the
	// arena wastes the tail of a chunk when the next payload does not fit,
	// and each retained message costs a 32-byte index entry.
	MaxBytes int64
	// MaxTopics is the most topics retained. Appending to a new topic when
	// the limit is reached forgets the topic appended to least recently.
	MaxTopics int
}

// DefaultHistoryConfig returns 100,000 messages and 64 MiB per topic, and
// 10,000 topics.
func DefaultHistoryConfig() HistoryConfig {
	return HistoryConfig{MaxMessages: 100_000, MaxBytes: 64 << 20, MaxTopics: 10_000}
}

// Validate reports whether c is usable. Errors wrap ErrConfig.
func (c HistoryConfig) Validate() error {
	switch {
	case c.MaxMessages < 0:
		return fmt.Errorf("%w: history MaxMessages %d is negative", ErrConfig, c.MaxMessages)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: history MaxBytes %d is negative", ErrConfig, c.MaxBytes)
	case c.MaxTopics < 1:
		return fmt.Errorf("%w: history MaxTopics %d must be at least 1", ErrConfig, c.MaxTopics)
	}
	return nil
}

// arenaChunk is the size of the arena chunks payloads are copied into. A
// payload larger than this gets a chunk of its own, which is not recycled.
const arenaChunk = 64 << 10

// maxFreeChunks bounds the chunks kept for reuse after eviction (16 MiB).
const maxFreeChunks = 256

// histEntry indexes one retained message. It holds no pointers, so the
// index of a large history costs the garbage collector nothing to scan.
type histEntry struct {
	seq   uint64
	time  int64
	chunk uint64 // topic-local chunk number, see topicHist.chunkBase
	off   uint32
	n     uint32
}

// topicHist is the retained history of one topic: a ring of index entries
// over a FIFO of arena chunks. Sequences in the ring are contiguous.
type topicHist struct {
	name string
	ents []histEntry // ring buffer; len(ents) is its capacity
	head int         // index of the oldest entry
	n    int         // entries held
	size int64       // payload bytes held

	chunks    [][]byte // FIFO of chunks; chunks[0] has number chunkBase
	chunkBase uint64
	used      int // bytes used in the last chunk

	lastSeq uint64 // last sequence appended, retained or not

	prev, next *topicHist // recency list, most recent first
}

func (th *topicHist) at(i int) *histEntry {
	j := th.head + i
	if j >= len(th.ents) {
		j -= len(th.ents)
	}
	return &th.ents[j]
}

// History retains the most recent messages of each topic at the publisher,
// bounded per topic by message count and payload bytes and overall by
// topic count, so that subscribers can repair gaps from it.
//
// Sequences of a topic must be appended in increasing order; the retained
// messages of a topic are always a contiguous run of sequences (see
// Append), so "everything from the first held sequence to the last" is
// available.
//
// Payloads are copied into a chunked byte arena whose chunks are recycled
// on eviction, so once a topic's history has reached its limits Append
// allocates nothing.
//
// Concurrency: a History is safe for one writer calling Append and any
// number of concurrent readers calling Range and Stats. Appends from
// several goroutines are also safe but serialise on the same lock. A Range
// callback runs under the read lock: it must not call Append, and a slow
// callback delays the writer.
type History struct {
	cfg HistoryConfig

	mu     sync.RWMutex
	topics map[string]*topicHist
	lru    *topicHist // most recently appended topic
	tail   *topicHist // least recently appended topic
	free   [][]byte   // recycled chunks of size arenaChunk

	messages      int
	bytes         int64
	evicted       uint64
	evictedTopics uint64
	rejected      uint64
}

// NewHistory returns an empty History. It fails if cfg is invalid.
func NewHistory(cfg HistoryConfig) (*History, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &History{cfg: cfg, topics: make(map[string]*topicHist)}, nil
}

// Config returns the configuration the History was created with.
func (h *History) Config() HistoryConfig { return h.cfg }

// Append retains a copy of payload as sequence seq of topic, published at
// t (Unix nanoseconds), evicting the oldest messages of the topic as needed
// to stay within MaxMessages and MaxBytes, and the least recently appended
// topic if topic is new and MaxTopics are already held.
//
// Sequences of a topic must increase: a seq that is 0 or not above the
// last one appended is rejected with ErrOutOfOrder and changes nothing.
// A seq that skips ahead (not last+1) is accepted, but since retained
// history is kept contiguous, the older messages of the topic are evicted
// first. A payload larger than MaxBytes is rejected with ErrTooLarge; it
// still counts as appended (the next sequence must be above it) and, for
// contiguity, the topic's older messages are evicted.
//
// With retention off (MaxMessages 0) Append does nothing and returns nil.
func (h *History) Append(topic string, seq uint64, t int64, payload []byte) error {
	if h.cfg.MaxMessages == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()

	th := h.topics[topic]
	if seq == 0 || (th != nil && seq <= th.lastSeq) {
		h.rejected++
		last := uint64(0)
		if th != nil {
			last = th.lastSeq
		}
		return fmt.Errorf("%w: topic %q seq %d after %d", ErrOutOfOrder, topic, seq, last)
	}
	if th == nil {
		th = h.addTopic(topic)
	}
	h.touch(th)

	if th.n > 0 && seq != th.lastSeq+1 {
		h.evictAll(th)
	}
	th.lastSeq = seq
	if (h.cfg.MaxBytes > 0 && int64(len(payload)) > h.cfg.MaxBytes) || uint64(len(payload)) > math.MaxUint32 {
		h.evictAll(th)
		h.rejected++
		return fmt.Errorf("%w: topic %q seq %d has %d bytes, limit %d", ErrTooLarge, topic, seq, len(payload), h.cfg.MaxBytes)
	}
	for th.n > 0 && (th.n >= h.cfg.MaxMessages || (h.cfg.MaxBytes > 0 && th.size+int64(len(payload)) > h.cfg.MaxBytes)) {
		h.evictOldest(th)
	}

	// Place the payload in the last chunk, or start a new one.
	if len(th.chunks) == 0 || th.used+len(payload) > len(th.chunks[len(th.chunks)-1]) {
		th.chunks = append(th.chunks, h.newChunk(len(payload)))
		th.used = 0
	}
	ci := len(th.chunks) - 1
	off := th.used
	th.used += copy(th.chunks[ci][off:], payload)

	if th.n == len(th.ents) {
		th.grow(h.cfg.MaxMessages)
	}
	e := th.at(th.n)
	*e = histEntry{seq: seq, time: t, chunk: th.chunkBase + uint64(ci), off: uint32(off), n: uint32(len(payload))}
	th.n++
	th.size += int64(len(payload))
	h.messages++
	h.bytes += int64(len(payload))
	return nil
}

// grow doubles the ring's capacity, up to limit, keeping entries in order.
func (th *topicHist) grow(limit int) {
	c := 2 * len(th.ents)
	if c < 16 {
		c = 16
	}
	if c > limit {
		c = limit
	}
	ents := make([]histEntry, c)
	for i := 0; i < th.n; i++ {
		ents[i] = *th.at(i)
	}
	th.ents, th.head = ents, 0
}

func (h *History) addTopic(name string) *topicHist {
	var th *topicHist
	if len(h.topics) >= h.cfg.MaxTopics && h.tail != nil {
		// Forget the least recently appended topic, reusing its index ring.
		th = h.tail
		h.evictAll(th)
		h.releaseChunks(th, true)
		h.unlink(th)
		delete(h.topics, th.name)
		h.evictedTopics++
		*th = topicHist{ents: th.ents, chunks: th.chunks[:0]}
	} else {
		th = &topicHist{}
	}
	th.name = name
	h.topics[name] = th
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
	th.size -= int64(e.n)
	h.bytes -= int64(e.n)
	th.head++
	if th.head == len(th.ents) {
		th.head = 0
	}
	th.n--
	h.messages--
	h.evicted++
	h.releaseChunks(th, false)
}

func (h *History) evictAll(th *topicHist) {
	h.evicted += uint64(th.n)
	h.messages -= th.n
	h.bytes -= th.size
	th.n, th.head, th.size = 0, 0, 0
	h.releaseChunks(th, false)
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
		h.freeChunk(th.chunks[i])
		th.chunks[i] = nil
	}
	rest := copy(th.chunks, th.chunks[drop:])
	for i := rest; i < len(th.chunks); i++ {
		th.chunks[i] = nil
	}
	th.chunks = th.chunks[:rest]
	th.chunkBase = keep
	if len(th.chunks) == 0 {
		th.used = 0
	}
}

func (h *History) newChunk(n int) []byte {
	if n > arenaChunk {
		return make([]byte, n)
	}
	if k := len(h.free); k > 0 {
		c := h.free[k-1]
		h.free[k-1] = nil
		h.free = h.free[:k-1]
		return c
	}
	return make([]byte, arenaChunk)
}

func (h *History) freeChunk(c []byte) {
	if len(c) == arenaChunk && len(h.free) < maxFreeChunks {
		h.free = append(h.free, c)
	}
}

// Range calls fn for each retained message of topic with a sequence in
// [from, to], in increasing sequence order, until fn returns false. fn may
// be nil to only query the bounds. It returns the oldest and newest
// sequence still held for the topic (both 0 if it holds none) and whether
// the topic is known at all.
//
// The payload passed to fn aliases the arena: it is valid only during that
// call of fn and must not be modified. fn runs under the History's read
// lock and must not call Append.
func (h *History) Range(topic string, from, to uint64, fn func(seq uint64, t int64, payload []byte) bool) (first, last uint64, ok bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	th := h.topics[topic]
	if th == nil {
		return 0, 0, false
	}
	if th.n == 0 {
		return 0, 0, true
	}
	first = th.at(0).seq
	last = th.at(th.n - 1).seq
	if fn == nil || to < first || from > last || from > to {
		return first, last, true
	}
	lo, hi := max(from, first), min(to, last)
	for i := int(lo - first); i <= int(hi-first); i++ {
		e := th.at(i)
		c := th.chunks[e.chunk-th.chunkBase]
		end := e.off + e.n
		if !fn(e.seq, e.time, c[e.off:end:end]) {
			break
		}
	}
	return first, last, true
}

// HistoryStats are a History's gauges and counters.
type HistoryStats struct {
	// Topics, Messages and Bytes are what is retained now (Bytes counts payload bytes).
	Topics   int
	Messages int
	Bytes    int64
	// Evicted counts messages dropped to stay within the limits.
	Evicted uint64
	// EvictedTopics counts topics forgotten to stay within MaxTopics.
	EvictedTopics uint64
	// Rejected counts Appends refused with ErrOutOfOrder or ErrTooLarge.
	Rejected uint64
}

// Stats returns the current gauges and counters.
func (h *History) Stats() HistoryStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return HistoryStats{
		Topics:        len(h.topics),
		Messages:      h.messages,
		Bytes:         h.bytes,
		Evicted:       h.evicted,
		EvictedTopics: h.evictedTopics,
		Rejected:      h.rejected,
	}
}
