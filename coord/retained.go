package coord

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/journal"
	"github.com/syncmq/syncmq/recovery"
)

// retained is where a publisher keeps what it sent, so that subscribers
// can repair gaps: the memory History (one epoch, this process's), or,
// with DataDir, the journal on disk (every epoch it still holds, across
// restarts and crashes).
type retained interface {
	// keep stores batches, in order, before any of them reaches the
	// socket; it returns how many it stored. The sender sends only those.
	keep(batches []*outMsg) (int, error)
	// bounds describes what is held of (epoch, topic).
	bounds(epoch uint64, topic string) heldRange
	// replay calls fn, in sequence order, for each held batch of (epoch,
	// topic) overlapping [from, to], until fn returns an error. The frames
	// passed to fn are the retained batch as it was sent; they are valid
	// only during the call, and fn may modify them (it sets the REPLAY
	// flag). No lock a sender needs is held while fn runs.
	replay(epoch uint64, topic string, from, to uint64, fn func(f envelope.Frames, count int) error) error
	// unreadable returns the first run of sequences of (epoch, topic)
	// overlapping [from, to] that the store recorded as published but
	// cannot read back (journal damage); it may extend beyond to. The
	// memory History has none.
	unreadable(epoch uint64, topic string, from, to uint64) (first, last uint64, ok bool)
	// stats fills its part of st.
	stats(st *PublisherStats)
	close() error
}

// feedsCatchUps reports whether store can feed subscribers catching up
// (SlowCatchUp). A memory History with retention off holds nothing: a
// cursor over it would skip everything sent after it started, records
// published after the subscriber's join included, and report them lost.
func feedsCatchUps(store retained) bool {
	if m, ok := store.(*memoryStore); ok {
		return m.h.Config().MaxMessages > 0
	}
	return store != nil
}

// heldRange describes what a retained store holds of one (epoch, topic).
type heldRange struct {
	epochKnown bool   // the store knows the epoch at all
	known      bool   // it knows the topic in that epoch
	first      uint64 // oldest sequence held; 0 if none
	published  uint64 // last sequence published, held or not
	closed     bool   // an earlier epoch: published is its final sequence
}

// openStore opens what the publisher keeps sent batches in: the journal
// in cfg.DataDir, which decides cfg.ID (the directory's, unless one was
// configured) and cfg.Epoch (above every epoch it has seen, unless one was
// configured); else the memory History when recovery is on; else nothing.
func openStore(cfg *PublisherConfig) (retained, error) {
	if cfg.DataDir != "" {
		jc := cfg.Journal
		jc.Publisher = cfg.ID
		if jc.Logger == nil {
			jc.Logger = cfg.Logger.Named("journal")
		}
		j, err := journal.Open(cfg.DataDir, jc)
		if err != nil {
			return nil, err
		}
		cfg.ID = j.Publisher()
		if cfg.Epoch == 0 {
			cfg.Epoch = j.NextEpoch(newEpoch())
		}
		if err := j.Begin(cfg.Epoch); err != nil {
			_ = j.Close()
			return nil, err
		}
		return &journalStore{j: j, epoch: cfg.Epoch}, nil
	}
	if cfg.RecoveryBind == "" {
		return nil, nil
	}
	h, err := recovery.NewHistory(cfg.History)
	if err != nil {
		return nil, err
	}
	return &memoryStore{h: h, epoch: cfg.Epoch}, nil
}

// memoryStore is the History kept in memory: this epoch only.
type memoryStore struct {
	h     *recovery.History
	epoch uint64
	// copyMu lets one replay at a time copy out of the History, so the
	// sender's keep, which takes the History's write lock, waits for at
	// most one copy of replayCopyBytes however many clients fetch: a
	// reader descheduled inside its copy then holds up the live stream
	// once, not once per fetcher.
	copyMu sync.Mutex
}

// keep retains each run of a topic as the DATA message a replay sends.
func (m *memoryStore) keep(batches []*outMsg) (int, error) {
	for _, b := range batches {
		b.eachRun(func(r *outRun) {
			_ = m.h.AppendBatch(r.topic.name, r.seq, r.count, r.header, r.payload) // sequences only grow
		})
	}
	return len(batches), nil
}

func (m *memoryStore) bounds(epoch uint64, topic string) heldRange {
	if epoch != m.epoch {
		return heldRange{}
	}
	b := m.h.Bounds(topic)
	return heldRange{epochKnown: true, known: b.Known, first: b.First, published: b.Published}
}

// replayCopyBytes bounds what one pass copies out of the History before
// sending it: the History's lock is never held while the socket is
// written, so a slow subscriber cannot stall the publisher's sender, and
// memory per request stays small. One batch is at most 64 KiB by
// default, so a pass is about one batch: the sender's keep waits for a
// copy of this size at most.
const replayCopyBytes = 64 << 10

func (m *memoryStore) replay(epoch uint64, topic string, from, to uint64, fn func(envelope.Frames, int) error) error {
	rb := replayBufs.Get().(*replayBuf)
	defer replayBufs.Put(rb)
	rb.topic = append(rb.topic[:0], topic...)
	for from <= to {
		buf, spans := rb.buf[:0], rb.spans[:0]
		next := from
		m.copyMu.Lock()
		m.h.Batches(topic, from, to, func(b recovery.Batch) bool {
			off := len(buf)
			buf = append(append(buf, b.Header...), b.Payload...)
			spans = append(spans, span{off, len(buf), b.Count})
			next = b.Last() + 1
			return len(buf) < replayCopyBytes
		})
		m.copyMu.Unlock()
		rb.buf, rb.spans = buf, spans
		if len(spans) == 0 {
			return nil
		}
		for _, s := range spans {
			hdrEnd := s.hdr + envelope.HeaderSize
			if err := fn(envelope.Frames{rb.topic, buf[s.hdr:hdrEnd:hdrEnd], buf[hdrEnd:s.end]}, s.count); err != nil {
				return err
			}
		}
		if next <= from { // cannot happen: batches hold increasing sequences
			return nil
		}
		from = next
	}
	return nil
}

func (m *memoryStore) unreadable(uint64, string, uint64, uint64) (uint64, uint64, bool) {
	return 0, 0, false
}

func (m *memoryStore) stats(st *PublisherStats) { st.Retained = m.h.Stats() }

// close returns the History's memory, which is outside the Go heap; the
// recovery server, the last reader, is closed before.
func (m *memoryStore) close() error {
	m.h.Close()
	return nil
}

// journalStore is the journal on disk (PublisherConfig.DataDir).
type journalStore struct {
	j       *journal.Journal
	fs      []envelope.Frames // reused by keep
	epoch   uint64
	failing atomic.Bool // the latest keep failed (PublisherStats.KeepFailing)
}

// keep appends each run of a topic as a DATA batch (the journal holds
// DATA only; a MULTI is its runs). A batch whose runs were only partly
// appended when the journal failed (its disk full) remembers how many,
// so that the retry appends the rest and nothing twice.
func (s *journalStore) keep(batches []*outMsg) (int, error) {
	s.fs = s.fs[:0]
	for _, b := range batches {
		i := 0
		b.eachRun(func(r *outRun) {
			if i >= b.journaled {
				s.fs = append(s.fs, envelope.Frames{r.topic.nameBytes, r.header, r.payload})
			}
			i++
		})
	}
	n, err := s.j.AppendAll(s.fs)
	clear(s.fs)
	s.failing.Store(err != nil)
	if err == nil {
		for _, b := range batches {
			b.journaled = 0
		}
		return len(batches), nil
	}
	kept := 0
	for _, b := range batches { // hand out the n runs appended, in order
		runs := b.runCount() - b.journaled
		if n < runs {
			b.journaled += n
			break
		}
		n -= runs
		b.journaled = 0
		kept++
	}
	return kept, err
}

func (s *journalStore) bounds(epoch uint64, topic string) heldRange {
	rng, err := s.j.Read(epoch, topic, 0, 0, nil)
	if err != nil {
		return heldRange{}
	}
	return heldRange{epochKnown: rng.Known || s.j.KnowsEpoch(epoch), known: rng.Known, first: rng.First,
		published: rng.Final, closed: rng.Closed}
}

func (s *journalStore) replay(epoch uint64, topic string, from, to uint64, fn func(envelope.Frames, int) error) error {
	var ferr error
	_, err := s.j.Read(epoch, topic, from, to, func(b journal.Batch) bool {
		ferr = fn(b.Frames, int(b.Header.Count))
		return ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// unreadable is the journal's first hole in [from, to] (journal.Hole),
// damage a replay may just have found included.
func (s *journalStore) unreadable(epoch uint64, topic string, from, to uint64) (uint64, uint64, bool) {
	rng, err := s.j.Read(epoch, topic, from, to, nil)
	if err != nil || rng.Hole == (journal.Hole{}) {
		return 0, 0, false
	}
	return rng.Hole.From, rng.Hole.To, true
}

func (s *journalStore) stats(st *PublisherStats) {
	st.Journal = s.j.Stats()
	st.KeepFailing = s.failing.Load()
}

func (s *journalStore) close() error { return s.j.Close() }

// newEpoch is a fresh epoch: the time in Unix microseconds, which grows
// across restarts and stays below 2^53, so JSON carries it exactly
// (envelope.EpochAt). With a journal, NextEpoch keeps it above every
// epoch the journal has seen, nanosecond epochs of protocol 1.0 included.
func newEpoch() uint64 { return envelope.EpochAt(time.Now()) }

// replayBuf is what one memory replay copies batches into, reused across
// requests so a replay allocates nothing per record.
type replayBuf struct {
	topic, buf []byte
	spans      []span
}

var replayBufs = sync.Pool{New: func() any { return &replayBuf{} }}

// span locates one copied batch in replayBuf.buf.
type span struct{ hdr, end, count int }
