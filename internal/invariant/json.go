package invariant

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// Summary is the last line of `syncsub --output json`: what the run says
// of itself.
type Summary struct {
	Outcome  Outcome
	Reason   string
	Counts   Counts
	Complete bool // every publisher ended (publishers_ended > 0 and the outcome is not interrupted)
}

// jsonLine is any line of `syncsub --output json`; each type uses some
// of the fields (cmd/syncsub/output.go writes them).
type jsonLine struct {
	Type       string `json:"type"`
	Topic      string `json:"topic"`
	Seq        uint64 `json:"seq"`
	Publisher  string `json:"publisher"`
	Epoch      uint64 `json:"epoch"`
	Payload    string `json:"payload"`
	Payload64  []byte `json:"payload_b64"`
	Replay     bool   `json:"replay"`
	From       uint64 `json:"from"`
	To         uint64 `json:"to"`
	Cause      string `json:"cause"`
	Outcome    string `json:"outcome"`
	ExitCode   int    `json:"exit_code"`
	Reason     string `json:"reason"`
	Received   uint64 `json:"received"`
	Recovered  uint64 `json:"recovered"`
	Lost       uint64 `json:"lost"`
	LossEvents uint64 `json:"loss_events"`
	Unknown    uint64 `json:"unknown_tails"`
	Ended      int    `json:"publishers_ended"`
}

// ReadJSON feeds the lines of one `syncsub --output json` (or `--output
// runs`) run of sub to
// c, and returns its summary, or nil if there is none (the process was
// killed). A last line cut short by a kill is ignored; any other line
// that does not parse is an error.
func (c *Checker) ReadJSON(sub string, run int, r io.Reader) (*Summary, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var (
		sum     *Summary
		pending error // a bad line: an error unless it was the last
		n       int
	)
	for sc.Scan() {
		n++
		if pending != nil {
			return nil, pending
		}
		var l jsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			pending = fmt.Errorf("line %d: %v: %q", n, err, clip(sc.Bytes()))
			continue
		}
		ev := Event{Sub: sub, Run: run, Publisher: l.Publisher, Epoch: l.Epoch, Topic: l.Topic}
		switch l.Type {
		case "message":
			ev.Kind, ev.Seq, ev.Replay = Message, l.Seq, l.Replay
			ev.Payload = l.Payload64
			if l.Payload64 == nil {
				ev.Payload = []byte(l.Payload)
			}
		case "run":
			ev.Kind, ev.From, ev.To, ev.Replay = Messages, l.From, l.To, l.Replay
		case "loss":
			ev.Kind, ev.From, ev.To, ev.Cause = Loss, l.From, l.To, l.Cause
		case "joined":
			ev.Kind = Joined
		case "end":
			ev.Kind, ev.Cause = End, l.Cause
		case "summary":
			sum = &Summary{
				Outcome:  Outcome{Name: l.Outcome, ExitCode: l.ExitCode},
				Reason:   l.Reason,
				Counts:   Counts{Received: l.Received, Recovered: l.Recovered, Lost: l.Lost, LossEvents: l.LossEvents, UnknownTails: l.Unknown},
				Complete: l.Ended > 0 && l.Outcome != "interrupted",
			}
			continue
		default:
			continue // caught-up, publisher-restart: nothing to check
		}
		c.Add(ev)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return sum, nil
}

// JudgeRun checks what a finished run said (its summary and exit code)
// against its events: the counts, the outcome, and the exit code the
// process returned.
func (c *Checker) JudgeRun(sub string, run int, sum *Summary, exitCode int) {
	if sum == nil {
		c.Failf("%s run %d: exited %d without a summary", sub, run, exitCode)
		return
	}
	c.CheckCounts(sub, run, sum.Counts)
	c.CheckOutcome(sub, run, sum.Complete, sum.Outcome)
	if exitCode != sum.Outcome.ExitCode {
		c.Failf("%s run %d: the summary says exit %d, the process exited %d", sub, run, sum.Outcome.ExitCode, exitCode)
	}
}

// Delivered returns how many records sub's run delivered in stream s,
// and the next sequence it expected.
func (c *Checker) Delivered(sub string, run int, s Stream) (delivered, next uint64) {
	if r := c.runs[runKey{sub, run}]; r != nil {
		if st := r.streams[s]; st != nil {
			return st.delivered, st.next
		}
	}
	return 0, 0
}
