package coord

import (
	"errors"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

// TestJobOutcome: the job completes at the END that makes every publisher
// ended, and its outcome is decided in order: a failed quorum, then a
// publisher gone, then an interruption before completion, then losses.
func TestJobOutcome(t *testing.T) {
	a, b := envelope.ID{1}, envelope.ID{2}
	end := func(id envelope.ID, cause string) Event { return Event{Type: EventEnd, Publisher: id, Cause: cause} }
	tests := []struct {
		name        string
		ends        []Event
		publishers  int
		interrupted bool
		st          SubscriberStats
		want        Outcome
	}{
		{"clean end", []Event{end(a, "")}, 1, false, SubscriberStats{}, OutcomeOK},
		{"end with loss", []Event{end(a, "")}, 1, false, SubscriberStats{Lost: 3, LossEvents: 1}, OutcomeLost},
		{"end with an unknown tail", []Event{end(a, "")}, 1, false, SubscriberStats{UnknownTails: 1}, OutcomeLost},
		{"closed before end", nil, 1, true, SubscriberStats{}, OutcomeInterrupted},
		{"closed before end, with loss", nil, 1, true, SubscriberStats{Lost: 5}, OutcomeInterrupted},
		{"closed after every end", []Event{end(a, "")}, 1, true, SubscriberStats{}, OutcomeOK},
		{"closed after one of two ends", []Event{end(a, "")}, 2, true, SubscriberStats{}, OutcomeInterrupted},
		{"quorum failed", []Event{end(a, EndQuorumFailed)}, 1, false, SubscriberStats{}, OutcomeQuorumFailed},
		{"publisher gone", []Event{end(a, EndPublisherGone)}, 1, false, SubscriberStats{Lost: 7, UnknownTails: 2}, OutcomePublisherGone},
		{"gone beats interrupted", []Event{end(a, EndPublisherGone)}, 2, true, SubscriberStats{}, OutcomePublisherGone},
		{"quorum beats gone", []Event{end(a, EndPublisherGone), end(b, EndQuorumFailed)}, 2, false, SubscriberStats{}, OutcomeQuorumFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newJob()
			for _, ev := range tt.ends {
				j.noteEnd(ev, tt.publishers, tt.st)
			}
			if tt.interrupted {
				j.close(tt.st)
			}
			select {
			case <-j.done:
			default:
				t.Fatal("not done")
			}
			err := j.result()
			var je *JobError
			switch {
			case tt.want == OutcomeOK && err != nil:
				t.Fatalf("err %v, want nil", err)
			case tt.want != OutcomeOK && (!errors.As(err, &je) || je.Outcome != tt.want || je.Reason == ""):
				t.Fatalf("err %#v, want outcome %s with a reason", err, tt.want)
			}
		})
	}
}

// TestJobCompletesOnce: the job completes at the END that makes every
// publisher ended, once; a repeated END counts once.
func TestJobCompletesOnce(t *testing.T) {
	j := newJob()
	done := func() bool {
		select {
		case <-j.done:
			return true
		default:
			return false
		}
	}
	j.noteEnd(Event{Type: EventEnd, Publisher: envelope.ID{1}}, 2, SubscriberStats{})
	j.noteEnd(Event{Type: EventEnd, Publisher: envelope.ID{1}}, 2, SubscriberStats{})
	if done() {
		t.Fatal("one publisher's END, twice, completed a job of two")
	}
	j.noteEnd(Event{Type: EventEnd, Publisher: envelope.ID{2}}, 2, SubscriberStats{Lost: 1})
	if !done() || j.result() == nil {
		t.Fatal("the second publisher's END did not complete the job with its loss")
	}
	j.noteEnd(Event{Type: EventEnd, Publisher: envelope.ID{3}}, 2, SubscriberStats{})
	j.close(SubscriberStats{})
	if j.result() == nil {
		t.Fatal("the outcome changed after completion")
	}
}
