package coord

import (
	"fmt"
	"sync"

	"github.com/syncmq/syncmq/envelope"
)

// Outcome names how a subscriber's job ended: what syncsub's summary
// prints and maps to its exit code.
type Outcome string

// Outcomes, in the order they decide: a publisher whose quorum failed
// decides first, since everything after follows from it; then one that
// disappeared; then an interruption before the job completed; then
// losses. OutcomeUnreachable is judged alone, when ConnectTimeout passes
// with no publisher joined.
const (
	OutcomeOK            Outcome = "ok"             // END from every publisher, everything delivered
	OutcomeQuorumFailed  Outcome = "quorum-failed"  // a publisher gave its epoch up: its quorum was not reached
	OutcomePublisherGone Outcome = "publisher-gone" // a publisher disappeared without END
	OutcomeInterrupted   Outcome = "interrupted"    // closed before END came from every publisher
	OutcomeLost          Outcome = "lost"           // records were reported lost
	// OutcomeUnreachable: no publisher joined within
	// SubscriberConfig.ConnectTimeout; nothing was received.
	OutcomeUnreachable Outcome = "unreachable"
)

// JobError is what Subscriber.Err returns when the job did not end ok.
type JobError struct {
	Outcome Outcome
	// Publisher is the publisher a quorum-failed or publisher-gone
	// outcome is about.
	Publisher envelope.ID
	// Received, Lost, LossEvents and UnknownTails are the counts the
	// outcome was judged on (SubscriberStats).
	Received, Lost, LossEvents, UnknownTails uint64
	// Reason says it in one line, without a package prefix.
	Reason string
}

func (e *JobError) Error() string { return e.Reason }

// job follows the ENDs of the publishers a Subscriber follows: the job is
// complete once every one ended (normally or not), and its outcome is
// judged then, or at Close.
type job struct {
	mu       sync.Mutex
	ends     map[envelope.ID]string // END's cause per publisher that ended
	complete bool
	done     chan struct{}
	err      error
}

func newJob() *job { return &job{ends: make(map[envelope.ID]string), done: make(chan struct{})} }

// noteEnd records an EventEnd; publishers is how many publishers the
// subscriber follows. It judges the job once every one ended.
func (j *job) noteEnd(ev Event, publishers int, st SubscriberStats) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ends[ev.Publisher] = ev.Cause
	if j.complete || len(j.ends) < publishers {
		return
	}
	j.complete = true
	j.err = judgeJob(j.ends, false, st)
	close(j.done)
}

// fail ends the job with e, unless it is already over.
func (j *job) fail(e *JobError) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.complete {
		return
	}
	j.complete = true
	j.err = e
	close(j.done)
}

// close ends the job at Close: interrupted, unless it was complete.
func (j *job) close(st SubscriberStats) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.complete {
		return
	}
	j.complete = true
	j.err = judgeJob(j.ends, true, st)
	close(j.done)
}

func (j *job) result() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// judgeJob decides the outcome from the ENDs, whether the job was
// interrupted, and the counts: nil for ok.
func judgeJob(ends map[envelope.ID]string, interrupted bool, st SubscriberStats) error {
	e := &JobError{Received: st.Received, Lost: st.Lost, LossEvents: st.LossEvents, UnknownTails: st.UnknownTails}
	losses := fmt.Sprintf("%d messages lost in %d loss events", st.Lost, st.LossEvents)
	for _, want := range []string{EndQuorumFailed, EndPublisherGone} {
		for _, id := range sortedIDs(ends) {
			if ends[id] != want {
				continue
			}
			e.Publisher = id
			if want == EndQuorumFailed {
				e.Outcome = OutcomeQuorumFailed
				e.Reason = fmt.Sprintf("publisher %s ended without publishing: its quorum was not reached", id.Short())
				return e
			}
			e.Outcome = OutcomePublisherGone
			e.Reason = fmt.Sprintf("publisher %s disappeared without END; what it published after the last record received is unknown on %d stream(s)",
				id.Short(), st.UnknownTails)
			if st.Lost > 0 {
				e.Reason += "; " + losses
			}
			return e
		}
	}
	switch {
	case interrupted:
		e.Outcome = OutcomeInterrupted
		e.Reason = fmt.Sprintf("interrupted before END: received %d messages, %d lost", st.Received, st.Lost)
	case st.Lost > 0 || st.UnknownTails > 0:
		e.Outcome = OutcomeLost
		e.Reason = losses
		if st.UnknownTails > 0 {
			e.Reason += fmt.Sprintf(", and what %d stream(s) published before a restart without END is unknown", st.UnknownTails)
		}
	default:
		return nil
	}
	return e
}

func sortedIDs(m map[envelope.ID]string) []envelope.ID {
	ids := make([]envelope.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && string(ids[j][:]) < string(ids[j-1][:]); j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// Done returns a channel that is closed when the subscriber's job is over:
// END (or its failure: an ABORT, the publisher gone) came from every
// publisher it follows, no publisher joined within ConnectTimeout, or
// Close was called.
func (s *Subscriber) Done() <-chan struct{} { return s.job.done }

// Err returns nil while the job runs and when it ended ok: END came from
// every publisher and every record up to it was delivered. Otherwise it
// returns a *JobError whose Outcome says how the job ended; Close before
// the job was complete makes it OutcomeInterrupted, and no publisher
// joined within ConnectTimeout OutcomeUnreachable.
func (s *Subscriber) Err() error { return s.job.result() }
