package main

import (
	"fmt"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
)

// Outcomes, as the summary names them.
const (
	outcomeOK            = "ok"
	outcomeLost          = "lost"
	outcomeInterrupted   = "interrupted"
	outcomeQuorumFailed  = "quorum-failed"
	outcomePublisherGone = "publisher-gone"
)

// tracker follows the publishers' ENDs. It is used from the handler
// goroutine and read after Close, which waits for that goroutine.
type tracker struct {
	ends     map[envelope.ID]string // END's cause per publisher that ended
	complete bool                   // every connected publisher ended
}

func newTracker() *tracker { return &tracker{ends: make(map[envelope.ID]string)} }

// note records ev; publishers says how many publishers the subscriber is
// connected to, and is asked only at an END (it is not free). note
// reports whether ev completed the job (the last publisher's END).
func (t *tracker) note(ev coord.Event, publishers func() int) bool {
	if ev.Type != coord.EventEnd {
		return false
	}
	t.ends[ev.Publisher] = ev.Cause
	if !t.complete && len(t.ends) >= publishers() {
		t.complete = true
		return true
	}
	return false
}

// ended reports whether any publisher ended.
func (t *tracker) ended() bool { return len(t.ends) > 0 }

// verdict is how a run ended: the outcome, the exit code and, for a
// failure, the reason printed on stderr.
type verdict struct {
	outcome string
	code    int
	reason  string
}

// judge decides the verdict. A publisher that failed its quorum or
// disappeared decides it first, since its losses follow from that; then an
// interruption before the job completed; then losses.
func judge(t *tracker, interrupted bool, st coord.SubscriberStats) verdict {
	for id, cause := range t.ends {
		if cause == coord.EndQuorumFailed {
			return verdict{outcomeQuorumFailed, cli.ExitQuorumFailed,
				fmt.Sprintf("publisher %s ended without publishing: its quorum was not reached", id.Short())}
		}
	}
	for id, cause := range t.ends {
		if cause == coord.EndPublisherGone {
			return verdict{outcomePublisherGone, cli.ExitPublisherGone,
				fmt.Sprintf("publisher %s disappeared without END; %d messages lost in %d gaps", id.Short(), st.Lost, st.Gaps)}
		}
	}
	if interrupted && !t.complete {
		return verdict{outcomeInterrupted, cli.ExitInterrupted,
			fmt.Sprintf("interrupted before END: received %d messages, %d lost", st.Received, st.Lost)}
	}
	if st.Lost > 0 || st.UnknownTails > 0 {
		reason := fmt.Sprintf("%d messages lost in %d gaps", st.Lost, st.Gaps)
		if st.UnknownTails > 0 {
			reason += fmt.Sprintf(", and what %d topic(s) published before a restart without END is unknown", st.UnknownTails)
		}
		return verdict{outcomeLost, cli.ExitFailed, reason + "; run 'syncsub diagnose' and see docs/runbook.md"}
	}
	return verdict{outcome: outcomeOK, code: cli.ExitOK}
}

// err returns the error main exits with, nil for success.
func (v verdict) err() error {
	if v.code == cli.ExitOK {
		return nil
	}
	return &cli.ExitError{Code: v.code, Err: fmt.Errorf("%s", v.reason)}
}
