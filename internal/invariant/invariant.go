// Package invariant checks syncmq's one promise over what subscribers
// handed their applications: every record of every stream is delivered
// in order or covered by a loss event with its range and cause, never
// neither; and the counts, outcomes and exit codes built on top say the
// same as the events. The simulator feeds it from the Handler; process
// tests feed it `syncsub --output json` lines (ParseJSON).
//
// A stream is one (publisher, epoch, topic) as one run of a subscriber
// saw it; a run is one process (or Subscriber) lifetime, and a subscriber
// restarted from its state directory continues its streams in the next
// run, with at most the documented at-least-once window again.
package invariant

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Kind is what an Event is.
type Kind uint8

// Event kinds, as the subscriber's Handler and `--output json` name them.
const (
	Message Kind = iota + 1
	Loss
	End
	Joined
	// Messages is a run of records From to To delivered one after the
	// other (`syncsub --output runs`); it carries no payloads.
	Messages
)

// Event is one thing a subscriber run handed its application.
type Event struct {
	Kind      Kind
	Sub       string // the subscriber's id
	Run       int    // its run (process, or Subscriber), from 1
	Publisher string // the publisher id, as printed
	Epoch     uint64
	Topic     string
	// Seq is a Message's sequence; From and To a Loss's range (To 0: open
	// ended, everything from From on is unknown), or a Messages run's.
	Seq, From, To uint64
	Cause         string // a Loss's cause, an abnormal End's
	Payload       []byte // a Message's payload, when the checker has Expect
	Replay        bool
	At            time.Time // when it was handed over; for reports only
}

// Stream names one stream.
type Stream struct {
	Publisher string
	Epoch     uint64
	Topic     string
}

func (s Stream) String() string {
	return fmt.Sprintf("%s/%d/%s", shortID(s.Publisher), s.Epoch, s.Topic)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Options configure a Checker.
type Options struct {
	// Expect, if set, returns the payload of a record, to check what was
	// delivered is what was published.
	Expect func(s Stream, seq uint64) []byte
	// RedeliverWindow bounds, per stream, the records a subscriber
	// restarted from its state directory may deliver again (the records
	// of one batch): 0 means none may come again.
	RedeliverWindow uint64
}

// Checker accumulates events and reports every violation of the
// invariant it sees. It is not safe for concurrent use.
type Checker struct {
	opt        Options
	runs       map[runKey]*run
	subs       map[string]*subState
	violations []string
}

type runKey struct {
	sub string
	run int
}

// run is what one run of a subscriber handed over.
type run struct {
	key     runKey
	streams map[Stream]*streamState
	ends    map[epochKey]string // END per publisher incarnation: its cause ("" completed)
	joined  map[epochKey]bool
	counts  Counts
}

type epochKey struct {
	pub   string
	epoch uint64
}

// streamState is one stream of one run.
type streamState struct {
	first, next uint64 // next is the sequence expected next; 0 before the first event
	openEnded   bool
	delivered   uint64
	lost        uint64
	afterJoin   uint64 // of lost, those not before-join
}

// subState carries what a subscriber's runs covered of each stream, for
// the continuity of a run restarted from state.
type subState struct {
	covered  map[Stream]uint64 // highest sequence handed over by any run
	stateful bool
}

// Counts is what a subscriber's summary says, or what its events add up
// to.
type Counts struct {
	Received, Recovered, Lost uint64 // messages delivered, of them replayed; records in bounded losses
	LossEvents, UnknownTails  uint64 // bounded loss events; open-ended ones
}

// New returns a Checker.
func New(opt Options) *Checker {
	return &Checker{opt: opt, runs: make(map[runKey]*run), subs: make(map[string]*subState)}
}

// Stateful says that sub resumes from a state directory: its next run
// continues the streams where the last one stopped, redelivering at most
// Options.RedeliverWindow records per stream.
func (c *Checker) Stateful(sub string) { c.sub(sub).stateful = true }

func (c *Checker) sub(id string) *subState {
	s := c.subs[id]
	if s == nil {
		s = &subState{covered: make(map[Stream]uint64)}
		c.subs[id] = s
	}
	return s
}

func (c *Checker) run(k runKey) *run {
	r := c.runs[k]
	if r == nil {
		r = &run{key: k, streams: make(map[Stream]*streamState), ends: make(map[epochKey]string), joined: make(map[epochKey]bool)}
		c.runs[k] = r
	}
	return r
}

// Failf records a violation found outside the checker (the simulator's
// own checks), so that one report lists them all.
func (c *Checker) Failf(format string, args ...any) {
	c.violations = append(c.violations, fmt.Sprintf(format, args...))
}

// Violations returns what was found wrong, in the order found.
func (c *Checker) Violations() []string { return c.violations }

// Err returns nil, or an error listing the violations.
func (c *Checker) Err() error {
	if len(c.violations) == 0 {
		return nil
	}
	const most = 20
	v := c.violations
	more := ""
	if len(v) > most {
		more = fmt.Sprintf("\n... and %d more", len(v)-most)
		v = v[:most]
	}
	return fmt.Errorf("%d violation(s) of the invariant:\n%s%s", len(c.violations), strings.Join(v, "\n"), more)
}

// Add checks one event as it comes: records of a stream in order without
// gaps or overlaps, losses adjoining them, nothing after an open-ended
// loss, and payloads as published.
func (c *Checker) Add(ev Event) {
	k := runKey{ev.Sub, ev.Run}
	r := c.run(k)
	where := fmt.Sprintf("%s run %d", ev.Sub, ev.Run)
	switch ev.Kind {
	case Joined:
		r.joined[epochKey{ev.Publisher, ev.Epoch}] = true
	case End:
		r.ends[epochKey{ev.Publisher, ev.Epoch}] = ev.Cause
	case Message:
		c.delivered(r, ev, ev.Seq, ev.Seq, where)
		if c.opt.Expect != nil {
			s := Stream{ev.Publisher, ev.Epoch, ev.Topic}
			if want := c.opt.Expect(s, ev.Seq); !bytes.Equal(want, ev.Payload) {
				c.Failf("%s: %s: record %d has payload %q, published %q", where, s, ev.Seq, clip(ev.Payload), clip(want))
			}
		}
	case Messages:
		s := Stream{ev.Publisher, ev.Epoch, ev.Topic}
		switch {
		case ev.To < ev.From:
			c.Failf("%s: %s: run %d-%d is backwards", where, s, ev.From, ev.To)
			return
		case c.opt.Expect != nil:
			c.Failf("%s: %s: run %d-%d carries no payloads to check", where, s, ev.From, ev.To)
		}
		c.delivered(r, ev, ev.From, ev.To, where)
	case Loss:
		s := Stream{ev.Publisher, ev.Epoch, ev.Topic}
		st := c.stream(r, s, ev.From, where)
		switch {
		case st.openEnded:
			c.Failf("%s: %s: loss %d-%d after an open-ended loss", where, s, ev.From, ev.To)
		case ev.From != st.next:
			c.Failf("%s: %s: loss starts at %d, expected %d next", where, s, ev.From, st.next)
		case ev.To != 0 && ev.To < ev.From:
			c.Failf("%s: %s: loss %d-%d is backwards", where, s, ev.From, ev.To)
		case ev.Cause == "":
			c.Failf("%s: %s: loss %d-%d has no cause", where, s, ev.From, ev.To)
		}
		if ev.To == 0 {
			st.openEnded = true
			r.counts.UnknownTails++
			return
		}
		st.next = max(st.next, ev.To+1)
		st.lost += ev.To - ev.From + 1
		if ev.Cause != "before-join" {
			st.afterJoin += ev.To - ev.From + 1
		}
		r.counts.Lost += ev.To - ev.From + 1
		r.counts.LossEvents++
		c.cover(ev.Sub, s, ev.To)
	}
}

// delivered records that ev's run delivered records from to to of its
// stream, in order.
func (c *Checker) delivered(r *run, ev Event, from, to uint64, where string) {
	s := Stream{ev.Publisher, ev.Epoch, ev.Topic}
	st := c.stream(r, s, from, where)
	switch {
	case st.openEnded:
		c.Failf("%s: %s: record %d delivered after an open-ended loss", where, s, from)
	case from != st.next:
		c.Failf("%s: %s: record %d delivered, expected %d next", where, s, from, st.next)
	}
	n := to - from + 1
	st.next = max(st.next, to+1)
	st.delivered += n
	r.counts.Received += n
	if ev.Replay {
		r.counts.Recovered += n
	}
	c.cover(ev.Sub, s, to)
}

// stream returns r's state of s, starting it at first: a stateful
// subscriber's later run must start where its earlier runs stopped, at
// most RedeliverWindow records before.
func (c *Checker) stream(r *run, s Stream, first uint64, where string) *streamState {
	st := r.streams[s]
	if st != nil {
		return st
	}
	st = &streamState{first: first, next: first}
	r.streams[s] = st
	ss := c.sub(r.key.sub)
	if covered, ok := ss.covered[s]; ok && ss.stateful {
		switch {
		case first > covered+1:
			c.Failf("%s: %s: resumed at %d, but the runs before stopped at %d: %d-%d neither delivered nor reported lost",
				where, s, first, covered, covered+1, first-1)
		case covered >= first && covered-first+1 > c.opt.RedeliverWindow:
			c.Failf("%s: %s: resumed at %d after the runs before reached %d: %d records again, the window is %d",
				where, s, first, covered, covered-first+1, c.opt.RedeliverWindow)
		}
	}
	return st
}

func (c *Checker) cover(sub string, s Stream, seq uint64) {
	ss := c.sub(sub)
	ss.covered[s] = max(ss.covered[s], seq)
}

// StartsAt checks that sub's run started stream s no later than first:
// a subscriber owes its application every record from where it joined
// (or where it was asked to start).
func (c *Checker) StartsAt(sub string, runN int, s Stream, first uint64) {
	r := c.runs[runKey{sub, runN}]
	if r == nil {
		return
	}
	if st := r.streams[s]; st != nil && st.first > first {
		c.Failf("%s run %d: %s: started at %d, but was owed every record from %d: %d-%d neither delivered nor reported lost",
			sub, runN, s, st.first, first, first, st.first-1)
	}
}

// Finals is the last sequence of every topic of a publisher incarnation
// that ended with END, as its END table said.
type Finals map[string]uint64

// Complete checks that sub's run, if it reported the end of publisher
// pub's epoch as completed, covered every stream of that epoch up to its
// final sequence: for each topic of finals that wants reports true, from
// where the stream started (or start, for a topic it has no events of)
// to the final sequence. It reports whether the run ended that epoch.
func (c *Checker) Complete(sub string, runN int, pub string, epoch uint64, finals Finals, wants func(topic string) bool, start func(topic string) uint64) bool {
	r := c.runs[runKey{sub, runN}]
	if r == nil {
		return false
	}
	cause, ended := r.ends[epochKey{pub, epoch}]
	if !ended || cause != "" {
		return ended
	}
	where := fmt.Sprintf("%s run %d", sub, runN)
	for _, topic := range slices.Sorted(maps.Keys(finals)) {
		final := finals[topic]
		if !wants(topic) {
			continue
		}
		s := Stream{pub, epoch, topic}
		st := r.streams[s]
		switch {
		case st == nil:
			from := start(topic)
			if ss := c.sub(sub); ss.stateful {
				// Its earlier runs handed over what this one had no
				// reason to: a stream they finished gets no events here.
				if covered, ok := ss.covered[s]; ok {
					from = max(from, covered+1)
				}
			}
			if from <= final {
				c.Failf("%s: %s: END reported as completed, but %d-%d were neither delivered nor reported lost", where, s, from, final)
			}
		case st.openEnded:
			c.Failf("%s: %s: END reported as completed after an open-ended loss", where, s)
		case st.next <= final:
			c.Failf("%s: %s: END reported as completed at %d, but %d-%d were neither delivered nor reported lost",
				where, s, st.next-1, st.next, final)
		}
	}
	return true
}

// Ended returns the publisher incarnations sub's run saw END (or its
// abnormal end) of, with the cause ("" completed), and those it joined.
func (c *Checker) Ended(sub string, runN int) (ends map[string]string, joined []string) {
	r := c.runs[runKey{sub, runN}]
	if r == nil {
		return nil, nil
	}
	ends = make(map[string]string, len(r.ends))
	for k, cause := range r.ends {
		ends[fmt.Sprintf("%s/%d", k.pub, k.epoch)] = cause
	}
	for k := range r.joined {
		joined = append(joined, fmt.Sprintf("%s/%d", k.pub, k.epoch))
	}
	slices.Sort(joined)
	return ends, joined
}

// Counts returns what sub's run's events add up to.
func (c *Checker) Counts(sub string, runN int) Counts {
	if r := c.runs[runKey{sub, runN}]; r != nil {
		return r.counts
	}
	return Counts{}
}

// LostAfter returns the records sub's run reported lost in publisher
// pub's epoch with a cause other than before-join: what its BYE must say.
func (c *Checker) LostAfter(sub string, runN int, pub string, epoch uint64) uint64 {
	r := c.runs[runKey{sub, runN}]
	if r == nil {
		return 0
	}
	var n uint64
	for s, st := range r.streams {
		if s.Publisher == pub && s.Epoch == epoch {
			n += st.afterJoin
		}
	}
	return n
}

// CheckCounts compares what sub's run's summary says with its events.
func (c *Checker) CheckCounts(sub string, runN int, said Counts) {
	if got := c.Counts(sub, runN); got != said {
		c.Failf("%s run %d: the summary says %+v, the events add up to %+v", sub, runN, said, got)
	}
}

// Outcome is what a subscriber's run ended with, as syncsub's summary
// and exit code say it.
type Outcome struct {
	Name     string // ok, lost, interrupted, quorum-failed, publisher-gone
	ExitCode int
}

// Exit codes (docs/runbook.md).
const (
	ExitOK            = 0
	ExitFailed        = 1
	ExitQuorumFailed  = 3
	ExitPublisherGone = 4
	ExitInterrupted   = 130
)

// Expected returns the outcome sub's run's events call for: a publisher
// whose quorum failed first, then one that disappeared without END, then
// an interruption before every publisher ended (complete false), then
// any loss; else ok.
func (c *Checker) Expected(sub string, runN int, complete bool) Outcome {
	r := c.runs[runKey{sub, runN}]
	if r == nil {
		return Outcome{"interrupted", ExitInterrupted}
	}
	causes := slices.Collect(maps.Values(r.ends))
	switch {
	case slices.Contains(causes, "quorum-failed"):
		return Outcome{"quorum-failed", ExitQuorumFailed}
	case slices.Contains(causes, "publisher-gone"):
		return Outcome{"publisher-gone", ExitPublisherGone}
	case !complete:
		return Outcome{"interrupted", ExitInterrupted}
	case r.counts.Lost > 0 || r.counts.UnknownTails > 0:
		return Outcome{"lost", ExitFailed}
	}
	return Outcome{"ok", ExitOK}
}

// CheckOutcome compares what sub's run said it ended with to what its
// events call for.
func (c *Checker) CheckOutcome(sub string, runN int, complete bool, said Outcome) {
	if want := c.Expected(sub, runN, complete); want != said {
		c.Failf("%s run %d: ended %q (exit %d), but its events call for %q (exit %d)", sub, runN, said.Name, said.ExitCode, want.Name, want.ExitCode)
	}
}

// Streams returns the streams sub's run has events of, sorted.
func (c *Checker) Streams(sub string, runN int) []Stream {
	r := c.runs[runKey{sub, runN}]
	if r == nil {
		return nil
	}
	out := slices.Collect(maps.Keys(r.streams))
	slices.SortFunc(out, func(a, b Stream) int {
		return cmp.Or(cmp.Compare(a.Publisher, b.Publisher), cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Topic, b.Topic))
	})
	return out
}

// Covered returns how far sub's run got in s: the next sequence it
// expected, and whether an open-ended loss closed it.
func (c *Checker) Covered(sub string, runN int, s Stream) (next uint64, openEnded bool) {
	if r := c.runs[runKey{sub, runN}]; r != nil {
		if st := r.streams[s]; st != nil {
			return st.next, st.openEnded
		}
	}
	return 0, false
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
