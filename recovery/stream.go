package recovery

import (
	"errors"
	"fmt"
	"time"

	"github.com/syncmq/syncmq/internal/mutation"

	"github.com/syncmq/syncmq/proto/fetch"
)

// DefaultMaxRepairRange is the largest range DefaultStreamConfig asks for
// in one FETCH. Servers should accept at least this many sequences per
// request.
const DefaultMaxRepairRange = 4096

// DefaultMaxHeldBytes is the memory DefaultStreamConfig lets a Stream
// hold behind a gap: 64 MiB, three seconds of 1 KiB records at 20,000
// records/s.
const DefaultMaxHeldBytes = 64 << 20

// HeldRecordOverhead is what a held record costs beyond the capacity of its
// payload copy, in bytes: its 40-byte slot in the held slice plus that
// slice's growth slack (up to a quarter for large slices), rounded up.
// The payload copy's capacity already includes the allocator's rounding.
const HeldRecordOverhead = 64

// StreamConfig configures a Stream.
type StreamConfig struct {
	// MaxHeldBytes bounds the memory of the records held (copied) while a
	// gap before them is repaired, in bytes: each held record counts its
	// payload copy's capacity plus HeldRecordOverhead. When a record would
	// take the total above it, the newest held records are let go until
	// half of it is held (StreamStats.Shed): they are missing again and
	// repaired after the gaps before them, so a repairable gap is never
	// given up for room. Only when no repair is possible (Abandon) or a
	// single record is held is the oldest gap given up as lost (cause
	// slow-consumer unless labelled otherwise) so that held records can be
	// delivered. Must be at least 1; a single record larger than the bound
	// is delivered as soon as the gaps before it are given up.
	MaxHeldBytes int64
	// RepairTimeout is how long a repair may go without progress (no new
	// replayed record, no DONE) before its range is declared lost with
	// cause timeout. At least MinRepairTimeout.
	RepairTimeout time.Duration
	// MaxRepairRange caps the sequences one Request asks for; a larger gap
	// is repaired by consecutive requests. 0 means no cap. A server's
	// "range too large" error halves the cap until the stream catches up.
	MaxRepairRange uint64
	// RetryBackoff is how long to wait before repeating a request the
	// server answered with "busy" or "rate limited". The repair's deadline
	// keeps running meanwhile. At least MinRetryBackoff.
	RetryBackoff time.Duration
}

// Floors of StreamConfig's durations. A repair needs at least a round
// trip to the publisher and the replay of a batch, which on a busy host
// takes tens of milliseconds: a shorter RepairTimeout would declare
// repairable gaps lost. A shorter RetryBackoff would ask a server that
// just said "busy" again at once, in a loop.
const (
	MinRepairTimeout = 100 * time.Millisecond
	MinRetryBackoff  = 10 * time.Millisecond
)

// DefaultStreamConfig returns MaxHeldBytes DefaultMaxHeldBytes (64 MiB),
// RepairTimeout 5 s, MaxRepairRange DefaultMaxRepairRange and RetryBackoff
// 100 ms.
func DefaultStreamConfig() StreamConfig {
	return StreamConfig{
		MaxHeldBytes:   DefaultMaxHeldBytes,
		RepairTimeout:  5 * time.Second,
		MaxRepairRange: DefaultMaxRepairRange,
		RetryBackoff:   100 * time.Millisecond,
	}
}

// Validate reports every problem of c. Errors wrap ErrConfig.
func (c StreamConfig) Validate() error {
	var errs []error
	if c.MaxHeldBytes < 1 {
		errs = append(errs, fmt.Errorf("%w: stream MaxHeldBytes %d must be at least 1", ErrConfig, c.MaxHeldBytes))
	}
	if c.RepairTimeout < MinRepairTimeout {
		errs = append(errs, fmt.Errorf("%w: stream RepairTimeout %v is below %v", ErrConfig, c.RepairTimeout, MinRepairTimeout))
	}
	if c.RetryBackoff < MinRetryBackoff {
		errs = append(errs, fmt.Errorf("%w: stream RetryBackoff %v is below %v", ErrConfig, c.RetryBackoff, MinRetryBackoff))
	}
	return errors.Join(errs...)
}

// Handler receives a Stream's outputs. The Stream calls it synchronously,
// from within the input method that caused the output, in the order the
// outputs happen. A Handler must not call back into the Stream.
type Handler interface {
	// Deliver hands over the record seq. Records are delivered in strictly
	// increasing sequence order, each at most once, and never a sequence
	// that was reported lost. payload is valid only during the call.
	// replayed says the record came from the recovery channel.
	Deliver(seq uint64, payload []byte, replayed bool)
	// Request asks the caller to send a FETCH for from..to (inclusive) and
	// to feed the answer back through Replay and then RepairDone or
	// RepairError. A new Request abandons any earlier one: the caller
	// discards DONE and ERROR responses to older request ids (their
	// REPLAYs may still be fed to Replay; they are harmless).
	Request(from, to uint64)
	// Loss reports that from..to (inclusive) will never be delivered.
	// Loss and Deliver calls together cover every sequence from the
	// stream's first expected one onwards exactly once, in order.
	Loss(from, to uint64, cause Cause)
	// CaughtUp reports that every gap has been resolved (repaired or
	// reported lost): seq is the last sequence delivered or lost, and the
	// stream is live again.
	CaughtUp(seq uint64)
}

type repairState uint8

const (
	repairIdle    repairState = iota // no request outstanding
	repairActive                     // a request is outstanding
	repairBackoff                    // a request was refused; waiting for retryAt
)

type heldRec struct {
	seq    uint64
	buf    []byte
	replay bool
}

// gapLabel remembers the cause a gap was labelled with when it was detected.
type gapLabel struct {
	from, to uint64
	cause    Cause
}

// cost is what r counts against MaxHeldBytes.
func (r *heldRec) cost() int64 { return int64(cap(r.buf)) + HeldRecordOverhead }

// maxFreeBufs and maxFreeBuf bound the payload buffers a Stream keeps for
// reuse; maxIdleHeld bounds the held slice's capacity kept once it is empty.
const (
	maxFreeBufs = 64
	maxFreeBuf  = 64 << 10
	maxIdleHeld = 4096
)

// Stream is the subscriber-side ordering and gap-repair state machine for
// one (publisher, epoch, topic) stream. Feed it what arrives (Live, Replay,
// RepairDone, RepairError, Heartbeat, End) and the passage of time (Tick);
// it calls its Handler to deliver records in order, request repairs, and
// report losses.
//
// Rules:
//
//   - Records are delivered in strictly increasing sequence order, never
//     twice. Duplicates and sequences already delivered or lost are dropped
//     and counted.
//   - A record beyond the next expected sequence opens a gap: the record
//     is held (copied) and the missing range requested. Heartbeat and End
//     open a gap when they show the publisher went further than received.
//   - At most one request is outstanding. Since delivery is in order, only
//     the first gap matters at any time: further gaps detected while a
//     repair is outstanding are queued implicitly (as holes between held
//     records) and requested one after the other once the first completes.
//   - Replayed records fill the gap and release the held records after it.
//   - A gap is given up, reported with Loss for exactly the sequences that
//     are missing, when the repair makes no progress for RepairTimeout,
//     when the held records would exceed MaxHeldBytes, when DONE says
//     partial, unknown epoch, unknown topic or beyond end, or when a DONE
//     claimed completeness but the request made no progress at all. Held
//     records after it are then delivered.
//   - Replayed records outside the requested range are welcome: a
//     publisher replays whole batches. They are delivered, held or dropped
//     like any other record.
//   - When no gap is left after one was seen, CaughtUp is reported.
//
// Causes: a gap is labelled when detected. Its part at or below the join
// point (NewStreamJoined) is before-join: those records were published
// before the subscriber joined. The rest is labelled with the cause hint
// if one is set (SetCauseHint, Reconnected; a hint labels one gap, and a
// Heartbeat showing nothing missing drops it). A label takes precedence
// when the gap is lost; unlabelled gaps get the cause of the failure:
// beyond-retention (DONE partial or unknown topic), timeout, slow-consumer
// (MaxHeldBytes overflow) or unknown. An unknown-epoch DONE is
// definitive: that and every later gap of the stream are reported as
// publisher-restart without further requests; Abandon does the same with
// a cause of the caller's choice.
//
// Deadlines are checked only by Tick; Deadline says when Tick is due next.
//
// Concurrency: a Stream is not safe for concurrent use. Calling one of its
// input methods (Live, Replay, Tick, ...) from its own Handler panics.
type Stream struct {
	cfg       StreamConfig
	h         Handler
	joined    uint64 // sequences up to joined were published before the join
	next      uint64 // every sequence below next was delivered or lost
	high      uint64 // highest sequence known to exist
	held      []heldRec
	hh        int   // held[hh:] are the held records, in increasing order
	heldBytes int64 // sum of held[hh:] costs
	free      [][]byte

	state          repairState
	reqFrom, reqTo uint64
	reqNext        uint64 // next when the request was issued
	deadline       time.Time
	retryAt        time.Time
	maxRange       uint64

	labels    []gapLabel
	hint      Cause
	hinted    bool
	gone      bool  // no gap can be repaired any more (Abandon, unknown epoch)
	goneCause Cause // the cause every gap is then lost with
	behind    bool  // a gap was seen since the last CaughtUp
	ended     bool
	endSeq    uint64
	busy      bool

	stats StreamStats
}

// NewStream returns a Stream expecting next as its first sequence and
// reporting to h, for a subscriber that joined when next-1 was the last
// sequence published: NewStreamJoined(cfg, next, next-1, h). That fits a
// stream that starts where the subscriber joined (next is the ACK table's
// sequence plus one) and a topic the ACK table did not list (next is 1,
// nothing was published before the join). A stream that starts before
// the join point needs NewStreamJoined.
func NewStream(cfg StreamConfig, next uint64, h Handler) (*Stream, error) {
	var joined uint64
	if next > 0 {
		joined = next - 1
	}
	return NewStreamJoined(cfg, next, joined, h)
}

// NewStreamJoined returns a Stream expecting next as its first sequence and
// reporting to h. joined is the last sequence published on the topic when
// the subscriber joined (the handshake ACK's table; 0 if the table did not
// list the topic): records up to joined that are lost are reported as
// before-join, records above it with the cause of what went wrong after
// the join. A subscriber that starts at the earliest retained record uses
// next 1 and joined the ACK's sequence; one that starts at the join uses
// next = joined+1, so none of its losses are before-join, not even those of
// its very first records.
func NewStreamJoined(cfg StreamConfig, next, joined uint64, h Handler) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if next == 0 {
		return nil, fmt.Errorf("%w: stream's first sequence must be at least 1", ErrConfig)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: stream needs a Handler", ErrConfig)
	}
	return &Stream{cfg: cfg, h: h, joined: joined, next: next, high: next - 1, maxRange: cfg.MaxRepairRange}, nil
}

func (s *Stream) enter() {
	if s.busy {
		panic("recovery: Stream method called from its own Handler")
	}
	s.busy = true
}

func (s *Stream) leave() { s.busy = false }

// Live feeds a record received on the live SUB socket. payload is copied
// if the record has to be held, so the caller may reuse it afterwards.
func (s *Stream) Live(seq uint64, payload []byte, now time.Time) {
	s.enter()
	defer s.leave()
	if seq < s.next {
		s.stats.Duplicates++
		return
	}
	if seq == s.next && s.high < seq && s.hh == len(s.held) {
		// In order with nothing missing: the common case.
		s.high = seq
		s.deliver(seq, payload, false)
		return
	}
	s.accept(seq, payload, false, now)
}

// Replay feeds a record received on the recovery channel (one record of a
// REPLAY). Like Live, but a replayed record that is not a duplicate counts
// as progress of the outstanding repair and extends its deadline.
func (s *Stream) Replay(seq uint64, payload []byte, now time.Time) {
	s.enter()
	defer s.leave()
	if seq < s.next {
		s.stats.Duplicates++
		return
	}
	s.accept(seq, payload, true, now)
}

func (s *Stream) accept(seq uint64, payload []byte, replay bool, now time.Time) {
	if seq > s.high {
		if seq > s.high+1 {
			s.openGap(s.high+1, seq-1)
		}
		s.high = seq
	}
	if seq == s.next {
		s.deliver(seq, payload, replay)
	} else if !s.hold(seq, payload, replay) {
		s.stats.Duplicates++
		return
	}
	if replay && s.state == repairActive {
		s.deadline = now.Add(s.cfg.RepairTimeout)
	}
	s.ensure(now)
}

// Progress tells the stream that the answer to its outstanding request is
// arriving, though none of its own records yet (a FETCH_MANY answers its
// ranges one after the other): the repair's deadline is extended as if a
// record had arrived.
func (s *Stream) Progress(now time.Time) {
	s.enter()
	defer s.leave()
	if s.state == repairActive {
		s.deadline = now.Add(s.cfg.RepairTimeout)
	}
}

// Feeding tells the stream that its missing records are on their way by
// another path than its requests, in order (a publisher feeding the
// history on the data connection): the deadline of an outstanding or
// retried repair is extended as if a record had arrived, so a request on
// a slower path does not give up what the feed is about to bring. The
// caller says it only while the feed runs.
func (s *Stream) Feeding(now time.Time) {
	s.enter()
	defer s.leave()
	if s.state != repairIdle {
		s.deadline = now.Add(s.cfg.RepairTimeout)
	}
}

// RepairDone feeds the DONE answering the outstanding request, or the
// request's entry of a DONE_MANY: its status and the first sequence the
// publisher still holds (0 if none). Feed every REPLAY of the request
// first. A RepairDone without an outstanding request is counted as stale
// and ignored. The DONE's last sequence may also be fed to Heartbeat: it
// reveals a missing tail like a heartbeat does.
//
// Beyond end (the publisher says none of the range was published) cannot
// be true of a gap the stream saw evidence of; like any status it does not
// know, it gives the requested range up with cause unknown (or its label).
//
// A DONE is trusted as it comes: the caller checks that the request id is
// the current one and drops answers to abandoned requests.
func (s *Stream) RepairDone(status fetch.Status, firstHeld uint64, now time.Time) {
	s.enter()
	defer s.leave()
	if s.state != repairActive {
		s.stats.Stale++
		return
	}
	to, startNext := s.reqTo, s.reqNext
	s.state = repairIdle
	switch status {
	case fetch.StatusComplete:
	case fetch.StatusPartial:
		// Everything below firstHeld is gone, even past this request: give
		// it up at once rather than one MaxRepairRange chunk per request.
		if firstHeld == 0 {
			s.giveUp(to, CauseBeyondRetention, false)
		} else if firstHeld > s.next {
			s.giveUp(firstHeld-1, CauseBeyondRetention, false)
		}
	case fetch.StatusUnknownEpoch:
		s.gone, s.goneCause = true, CausePublisherRestart
	case fetch.StatusUnknownTopic:
		s.giveUp(to, CauseBeyondRetention, false)
	case fetch.StatusBeyondEnd:
		s.giveUp(to, CauseUnknown, false)
	default:
		s.giveUp(to, CauseUnknown, false)
	}
	if !s.gone && s.next <= to && s.next == startNext {
		// The publisher says it sent the range, yet nothing of it arrived.
		// Asking again could loop forever; give the range up.
		s.giveUp(to, CauseUnknown, false)
	}
	s.ensure(now)
}

// RepairError feeds the ERROR answering the outstanding request. Busy and
// rate limited retry after RetryBackoff; range too large halves
// MaxRepairRange and retries at once; anything else gives the requested
// range up with cause unknown. Retries keep the original deadline. An
// error without an outstanding request is counted as stale and ignored.
func (s *Stream) RepairError(code fetch.ErrorCode, now time.Time) {
	s.enter()
	defer s.leave()
	if s.state != repairActive {
		s.stats.Stale++
		return
	}
	switch code {
	case fetch.CodeBusy, fetch.CodeRateLimited:
		s.state = repairBackoff
		s.retryAt = now.Add(s.cfg.RetryBackoff)
		return
	case fetch.CodeRangeTooLarge:
		if n := s.reqTo - s.reqFrom + 1; n > 1 {
			s.maxRange = n / 2
			if from, to, ok := s.frontGap(); ok {
				s.issue(from, to, now, false)
				return
			}
		}
	}
	to := s.reqTo
	s.state = repairIdle
	s.giveUp(to, CauseUnknown, false)
	s.ensure(now)
}

// Heartbeat feeds the last sequence the publisher says it published on
// this stream's topic. If that is beyond anything received, the tail is
// missing: a gap opens and is repaired.
func (s *Stream) Heartbeat(lastSeq uint64, now time.Time) {
	s.enter()
	defer s.leave()
	s.extend(lastSeq, now)
}

// End feeds the publisher's END: lastSeq is the final sequence of the
// topic. A missing tail is repaired like after a Heartbeat; Finished
// reports when everything up to lastSeq has been delivered or lost.
func (s *Stream) End(lastSeq uint64, now time.Time) {
	s.enter()
	defer s.leave()
	s.ended, s.endSeq = true, lastSeq
	s.extend(lastSeq, now)
}

func (s *Stream) extend(lastSeq uint64, now time.Time) {
	if lastSeq <= s.high {
		if _, _, gap := s.frontGap(); !gap {
			// Everything published is accounted for: whatever disruption a
			// pending hint was about lost nothing.
			s.hinted = false
		}
		return
	}
	s.openGap(s.high+1, lastSeq)
	s.high = lastSeq
	s.ensure(now)
}

// Lost feeds a LOSS message: the publisher says from..to will never be
// published, for cause c (a relay forwarding what its upstream reported
// lost). The range is labelled with c, and opened as a gap if nothing
// above it was known yet; its repair is answered "not held", and the
// range is reported lost with c, not with the cause of a gap of this
// stream's own. A range wholly below Next changes nothing.
func (s *Stream) Lost(from, to uint64, c Cause, now time.Time) {
	s.enter()
	defer s.leave()
	if to < s.next || from > to {
		return
	}
	s.extend(to, now)
	s.labels = append(s.labels, gapLabel{from: max(from, s.next), to: to, cause: c})
}

// Tick advances time: an outstanding repair whose deadline has passed is
// given up (cause timeout), and a request waiting out its backoff is
// repeated.
func (s *Stream) Tick(now time.Time) {
	s.enter()
	defer s.leave()
	if s.state == repairIdle {
		return
	}
	if !now.Before(s.deadline) {
		s.stats.Timeouts++
		to := s.reqTo
		s.state = repairIdle
		s.giveUp(to, CauseTimeout, false)
		s.ensure(now)
		return
	}
	if s.state == repairBackoff && !now.Before(s.retryAt) {
		if from, to, ok := s.frontGap(); ok {
			s.issue(from, to, now, false)
			return
		}
		s.state = repairIdle
		s.ensure(now)
	}
}

// SetCauseHint labels the next gap detected with c, e.g. CauseSlowConsumer
// after the publisher disconnected this subscriber as slow. The hint is
// dropped when a Heartbeat or End shows nothing is missing (the disruption
// lost nothing). In-order live records do not drop it, since records
// buffered before the disruption may still arrive after the hint.
// CauseUnknown clears the hint.
func (s *Stream) SetCauseHint(c Cause) {
	s.enter()
	defer s.leave()
	s.hint, s.hinted = c, c != CauseUnknown
}

// Reconnected tells the stream the transport reconnected: the next gap is
// labelled reconnect, and an outstanding request, likely lost with the old
// connection, is repeated with a fresh deadline.
func (s *Stream) Reconnected(now time.Time) {
	s.enter()
	defer s.leave()
	s.hint, s.hinted = CauseReconnect, true
	if s.state == repairActive {
		if from, to, ok := s.frontGap(); ok {
			s.issue(from, to, now, true)
		}
	}
}

// Abandon gives up repairing for good, e.g. with CausePublisherRestart
// once the publisher came back with a new epoch and this stream's history
// died with the old one: every missing sequence known of is reported lost
// with cause c (gap labels are ignored), held records are delivered, the
// outstanding request is dropped (the caller discards its answers), and
// any later gap is reported lost with c at once, without a request.
func (s *Stream) Abandon(c Cause, now time.Time) {
	s.enter()
	defer s.leave()
	s.gone, s.goneCause = true, c
	s.state = repairIdle
	s.ensure(now)
}

// openGap records that from..to are missing, labelling the gap: its part
// up to the join point before-join, the rest with the hint if one is set.
// A gap wholly before the join leaves the hint for a later one: whatever
// the hint is about happened after the join.
func (s *Stream) openGap(from, to uint64) {
	s.stats.Gaps++
	s.behind = true
	if from <= s.joined {
		end := min(to, s.joined)
		s.labels = append(s.labels, gapLabel{from: from, to: end, cause: CauseBeforeJoin})
		if end == to {
			return
		}
		from = end + 1
	}
	if s.hinted {
		s.labels = append(s.labels, gapLabel{from: from, to: to, cause: s.hint})
		s.hinted = false
	}
}

func (s *Stream) deliver(seq uint64, payload []byte, replay bool) {
	s.next = seq + 1
	s.stats.Delivered++
	if replay {
		s.stats.Recovered++
	}
	s.h.Deliver(seq, payload, replay)
}

// hold stores a copy of a record beyond next; false if already held.
func (s *Stream) hold(seq uint64, payload []byte, replay bool) bool {
	hs := s.held[s.hh:]
	i := len(hs)
	if i > 0 && hs[i-1].seq >= seq {
		lo, hi := 0, len(hs)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if hs[m].seq < seq {
				lo = m + 1
			} else {
				hi = m
			}
		}
		i = lo
		if hs[i].seq == seq {
			return false
		}
	}
	var buf []byte
	if k := len(s.free); k > 0 {
		buf = s.free[k-1][:0]
		s.free[k-1] = nil
		s.free = s.free[:k-1]
	}
	rec := heldRec{seq: seq, buf: append(buf, payload...), replay: replay}
	s.heldBytes += rec.cost()
	s.stats.HeldBytesPeak = max(s.stats.HeldBytesPeak, s.heldBytes)
	s.held = append(s.held, heldRec{})
	at := s.hh + i
	copy(s.held[at+1:], s.held[at:])
	s.held[at] = rec
	return true
}

// flush delivers held records while they continue the sequence.
func (s *Stream) flush() {
	for s.hh < len(s.held) && s.held[s.hh].seq == s.next {
		r := s.held[s.hh]
		s.held[s.hh] = heldRec{}
		s.hh++
		s.heldBytes -= r.cost()
		if mutation.Is(mutation.ForgetHeld) && s.heldBytes+r.cost() > s.cfg.MaxHeldBytes/2 {
			s.next = r.seq + 1 // planted: forgotten at the bound, neither delivered nor missing
		} else {
			s.deliver(r.seq, r.buf, r.replay)
		}
		if c := cap(r.buf); c > 0 && c <= maxFreeBuf && len(s.free) < maxFreeBufs {
			s.free = append(s.free, r.buf)
		}
	}
	switch {
	case s.hh == len(s.held) && cap(s.held) > maxIdleHeld:
		s.held, s.hh = nil, 0 // do not keep a large gap's slots for good
	case s.hh == len(s.held):
		s.held, s.hh = s.held[:0], 0
	case s.hh >= 64 && 2*s.hh >= len(s.held):
		n := copy(s.held, s.held[s.hh:])
		clear(s.held[n:])
		s.held, s.hh = s.held[:n], 0
	}
}

// frontGap returns the first missing range, if any. It assumes flush ran.
func (s *Stream) frontGap() (from, to uint64, ok bool) {
	if s.hh < len(s.held) {
		if f := s.held[s.hh].seq; f > s.next {
			return s.next, f - 1, true
		}
		return 0, 0, false
	}
	if s.high >= s.next {
		return s.next, s.high, true
	}
	return 0, 0, false
}

// ensure restores the stream's invariants after any change: held records
// that continue the sequence are delivered, MaxHeldBytes is respected, the first
// gap has a request outstanding (or waiting out a backoff), and CaughtUp is
// reported once no gap is left.
func (s *Stream) ensure(now time.Time) {
	for {
		s.flush()
		for s.heldBytes > s.cfg.MaxHeldBytes {
			if !s.gone && len(s.held)-s.hh > 1 && s.held[len(s.held)-1].seq > s.joined && s.behindWithin(shedFactor*s.cfg.MaxHeldBytes) {
				// The publisher still has what is held, as far as we
				// know: make room by letting go of the newest records,
				// which are repaired again once the gaps before them
				// are, rather than giving up a gap that may be repairable.
				s.shed()
				continue
			}
			// Give up every gap up to the newest held record, which the
			// live feed continues: the stream is at live again.
			if s.hh == len(s.held) {
				break // unreachable: held records are what is over the bound
			}
			s.stats.Overflows++
			s.giveUp(s.held[len(s.held)-1].seq, CauseSlowConsumer, false)
		}
		from, to, ok := s.frontGap()
		if !ok {
			s.state = repairIdle
			s.labels = s.labels[:0]
			if s.behind {
				s.behind = false
				s.maxRange = s.cfg.MaxRepairRange
				s.h.CaughtUp(s.next - 1)
			}
			return
		}
		if s.gone {
			s.giveUp(to, s.goneCause, true)
			continue
		}
		switch s.state {
		case repairActive:
			if s.reqTo >= s.next {
				return // the outstanding request still covers the first gap
			}
			// Filled by other means (live reordering, overflow): abandon it.
		case repairBackoff:
			return
		}
		s.issue(from, to, now, true)
		return
	}
}

// shedFactor bounds shedding: held records are let go only while the
// whole range behind, from next to high, would take at most shedFactor ×
// MaxHeldBytes if it were held. Beyond that the live feed outruns the
// repair for good, and lag would grow until the publisher's retention
// ran out; the oldest gap is given up instead, as a slow consumer.
const shedFactor = 4

// behindWithin reports whether the sequences from next to high, at the
// held records' average cost, come to at most limit bytes.
func (s *Stream) behindWithin(limit int64) bool {
	held := int64(len(s.held) - s.hh)
	if held == 0 || s.high < s.next {
		return true
	}
	avg := max(s.heldBytes/held, 1)
	return s.high-s.next < uint64(limit/avg)
}

// shed drops the newest held records until at most half of MaxHeldBytes
// is held, keeping at least one and every record published before the
// join (a loss of those must say before-join). Their sequences stay below high, so they
// are missing again: a gap the repair asks for once it reaches them, or
// reports lost if the publisher no longer has them. Half, not just under
// the bound, so that a stream behind a fast live feed sheds in steps
// rather than on every record.
func (s *Stream) shed() {
	target := s.cfg.MaxHeldBytes / 2
	for len(s.held)-s.hh > 1 && s.heldBytes > target && s.held[len(s.held)-1].seq > s.joined {
		last := len(s.held) - 1
		r := s.held[last]
		s.held[last] = heldRec{}
		s.held = s.held[:last]
		s.heldBytes -= r.cost()
		s.stats.Shed++
		if c := cap(r.buf); c > 0 && c <= maxFreeBuf && len(s.free) < maxFreeBufs {
			s.free = append(s.free, r.buf)
		}
	}
}

// issue sends a Request for the start of from..to, capped to maxRange.
// freshDeadline restarts the repair's deadline; retries keep it.
func (s *Stream) issue(from, to uint64, now time.Time, freshDeadline bool) {
	if s.maxRange > 0 && to-from >= s.maxRange {
		to = from + s.maxRange - 1
	}
	s.state = repairActive
	s.reqFrom, s.reqTo, s.reqNext = from, to, s.next
	if freshDeadline {
		s.deadline = now.Add(s.cfg.RepairTimeout)
	}
	s.retryAt = time.Time{}
	s.stats.Requests++
	s.h.Request(from, to)
}

// giveUp reports every missing sequence up to through as lost, delivering
// held records in between. Each Loss range carries one cause: the label of
// the gap it belongs to, else mech. forced ignores labels.
func (s *Stream) giveUp(through uint64, mech Cause, forced bool) {
	through = min(through, s.high)
	for {
		s.flush()
		if s.next > through {
			break
		}
		end := through
		if s.hh < len(s.held) {
			end = min(end, s.held[s.hh].seq-1)
		}
		cause := mech
		if !forced {
			for _, l := range s.labels {
				switch {
				case l.from <= s.next && s.next <= l.to:
					cause = l.cause
					end = min(end, l.to)
				case l.from > s.next && l.from <= end:
					end = l.from - 1
				}
			}
		}
		from := s.next
		s.next = end + 1
		s.stats.Lost += end - from + 1
		if mutation.Is(mutation.LossOffByOne) && end > from {
			end-- // planted: the range stops one short, and next skips it
		}
		s.h.Loss(from, end, cause)
	}
	n := 0
	for _, l := range s.labels {
		if l.to >= s.next {
			s.labels[n] = l
			n++
		}
	}
	s.labels = s.labels[:n]
}

// Next returns the next sequence the stream will deliver or report lost.
func (s *Stream) Next() uint64 { return s.next }

// InOrder reports whether a live record seq would be delivered at once,
// and the records after it too when they are fed next in order: seq is
// the next sequence, nothing beyond it has arrived and nothing is held.
func (s *Stream) InOrder(seq uint64) bool {
	return seq == s.next && s.high < seq && s.hh == len(s.held)
}

// Pending returns the range of the outstanding request, if any (also while
// it waits out a backoff).
func (s *Stream) Pending() (from, to uint64, ok bool) {
	if s.state == repairIdle {
		return 0, 0, false
	}
	return s.reqFrom, s.reqTo, true
}

// Deadline returns when Tick next has work to do, if ever: the repair
// deadline, or the end of a backoff if earlier.
func (s *Stream) Deadline() (time.Time, bool) {
	switch s.state {
	case repairActive:
		return s.deadline, true
	case repairBackoff:
		if s.retryAt.Before(s.deadline) {
			return s.retryAt, true
		}
		return s.deadline, true
	}
	return time.Time{}, false
}

// Finished reports whether End was fed and every sequence up to its last
// sequence has been delivered or reported lost.
func (s *Stream) Finished() bool { return s.ended && s.next > s.endSeq }

// StreamStats are a Stream's counters.
type StreamStats struct {
	// Delivered counts records delivered, Recovered those of them that came from a replay.
	Delivered, Recovered uint64
	// Duplicates counts records dropped because they were already
	// delivered, lost or held.
	Duplicates uint64
	// Gaps counts gaps detected; Lost counts sequences reported lost.
	Gaps, Lost uint64
	// Requests counts repair requests issued, Timeouts repairs that timed
	// out, Overflows gaps given up because MaxHeldBytes was reached with
	// no repair possible or a single record held.
	Requests, Timeouts, Overflows uint64
	// Shed counts held records let go at MaxHeldBytes to be repaired
	// again later.
	Shed uint64
	// Stale counts DONE and ERROR answers fed without an outstanding request.
	Stale uint64
	// Held is the number of records held now.
	Held int
	// HeldBytes is the memory of the records held now, in bytes, counted as
	// for MaxHeldBytes; it is at most MaxHeldBytes between calls.
	// HeldBytesPeak is the most it has been, including the moment a record
	// arrived that took it above MaxHeldBytes, so it may exceed that by
	// one record.
	HeldBytes, HeldBytesPeak int64
}

// Stats returns the stream's counters.
func (s *Stream) Stats() StreamStats {
	st := s.stats
	st.Held = len(s.held) - s.hh
	st.HeldBytes = s.heldBytes
	return st
}
