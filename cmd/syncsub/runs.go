package main

import (
	"time"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
)

// `--output runs` writes what `--output json` writes, except that a
// stream's consecutive deliveries become one line: an audit of millions
// of records a second costs a few lines, and the invariant checker
// judges a run as it judges each of its records.

const (
	// maxRunRecords ends a run line, so that the output moves on a
	// stream that never pauses.
	maxRunRecords = 100_000
	// runFlushInterval is the longest an open run waits before it is
	// written and stdout flushed, so a reader of the output sees progress;
	// the clock is read every clockEvery deliveries.
	runFlushInterval = time.Second
	clockEvery       = 64
	// maxOpenRuns bounds the streams with an open run; one more writes
	// them all out.
	maxOpenRuns = 4096
)

type jsonRun struct {
	Type      string `json:"type"`
	Publisher string `json:"publisher"`
	Epoch     uint64 `json:"epoch"`
	Topic     string `json:"topic"`
	From      uint64 `json:"from"`
	To        uint64 `json:"to"`
	Count     uint64 `json:"count"`
	Replay    bool   `json:"replay,omitempty"`
}

const typeRun = "run"

type runKey struct {
	pub   envelope.ID
	epoch uint64
	topic string
}

type openRun struct {
	from, to uint64
	replay   bool
}

// runs is the open run of each stream, in the order they were opened.
type runs struct {
	open      map[runKey]*openRun
	order     []runKey
	lastFlush time.Time
	seen      int // deliveries since the clock was last read
}

// extendRun adds a delivery to its stream's run, or writes that run out
// and opens another when the delivery does not follow it.
func (p *printer) extendRun(ev coord.Event) {
	if p.runs.open == nil {
		p.runs.open = make(map[runKey]*openRun)
		p.runs.lastFlush = time.Now()
	}
	k := runKey{ev.Publisher, ev.Epoch, ev.Topic}
	r := p.runs.open[k]
	switch {
	case r != nil && ev.Seq == r.to+1 && ev.Replay == r.replay && r.to-r.from+1 < maxRunRecords:
		r.to = ev.Seq
	case r != nil:
		p.writeRun(k, r)
		r.from, r.to, r.replay = ev.Seq, ev.Seq, ev.Replay
	default:
		if len(p.runs.order) >= maxOpenRuns {
			p.flushRuns()
		}
		p.runs.open[k] = &openRun{from: ev.Seq, to: ev.Seq, replay: ev.Replay}
		p.runs.order = append(p.runs.order, k)
	}
	// Reading the clock every delivery would cost half of the rest.
	if p.runs.seen++; p.runs.seen >= clockEvery {
		p.runs.seen = 0
		if now := time.Now(); now.Sub(p.runs.lastFlush) >= runFlushInterval {
			p.flushRuns()
			p.out.Flush()
		}
	}
}

// flushRuns writes every open run out and forgets them.
func (p *printer) flushRuns() {
	for _, k := range p.runs.order {
		p.writeRun(k, p.runs.open[k])
		delete(p.runs.open, k)
	}
	p.runs.order = p.runs.order[:0]
	p.runs.lastFlush = time.Now()
}

func (p *printer) writeRun(k runKey, r *openRun) {
	_ = p.enc.Encode(jsonRun{typeRun, k.pub.String(), k.epoch, k.topic, r.from, r.to, r.to - r.from + 1, r.replay})
}

// flush writes the open runs out and flushes stdout: what was printed is
// out of the process, as a checkpoint needs before it says it was
// delivered.
func (p *printer) flush() error {
	if p.format == "runs" {
		p.flushRuns()
	}
	return p.out.Flush()
}
