package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
)

// Phases of a run, as the progress line shows them.
const (
	phaseWaiting int32 = iota
	phasePublishing
	phaseDraining
)

// progress is syncpub's status line on a terminal: the wait for the
// quorum, then what was published of how many, the rate and the time
// left, then the hand-over at the end. It is drawn from the status
// goroutine; the run moves it from phase to phase.
type progress struct {
	stats  func() coord.PublisherStats
	total  int // messages to publish; 0 when unknown (--stdin)
	phase  atomic.Int32
	start  time.Time // of the run
	pubAt  atomic.Int64
	rate   *cli.Rate
	drainN atomic.Int64 // published when the drain began
}

func newProgress(stats func() coord.PublisherStats, total int, now time.Time) *progress {
	return &progress{stats: stats, total: total, start: now, rate: cli.NewRate(now)}
}

// publishing marks the start of publishing.
func (p *progress) publishing(now time.Time) {
	p.pubAt.Store(now.UnixNano())
	p.phase.Store(phasePublishing)
}

// draining marks the start of the hand-over, after n were published.
func (p *progress) draining(n int) {
	p.drainN.Store(int64(n))
	p.phase.Store(phaseDraining)
}

// line renders the status line at now.
func (p *progress) line(now time.Time) string {
	st := p.stats()
	perSec := p.rate.Per(now, st.Published)
	switch p.phase.Load() {
	case phaseWaiting:
		return fmt.Sprintf("waiting for the quorum: %d of %d subscribers (%s)", st.Live, st.Need, cli.Elapsed(now.Sub(p.start)))
	case phaseDraining:
		return fmt.Sprintf("published %s; handing them and END to the subscribers (%s queued)",
			cli.Count(p.drainN.Load()), cli.Size(int64(st.Wire.QueuedBytes)))
	}
	return publishingLine(st.Published, p.total, perSec, now.Sub(time.Unix(0, p.pubAt.Load())))
}

// publishingLine renders the progress of publishing: n of total, the
// current rate, and the time left at the average rate so far.
func publishingLine(n uint64, total int, perSec float64, elapsed time.Duration) string {
	if total <= 0 {
		return fmt.Sprintf("published %s  %s/s", cli.Count(n), cli.Count(int64(perSec)))
	}
	s := fmt.Sprintf("published %s of %s (%d%%)  %s/s", cli.Count(n), cli.Count(total), min(100, n*100/uint64(total)), cli.Count(int64(perSec)))
	if n > 0 && int(n) < total && elapsed > 0 {
		left := time.Duration(float64(elapsed) * float64(uint64(total)-n) / float64(n))
		s += "  " + cli.Elapsed(left) + " left"
	}
	return s
}

// finalLine is what replaces the progress line at the end: how many were
// published, in how long, at what rate.
func finalLine(n int, elapsed time.Duration) string {
	return fmt.Sprintf("published %s messages in %s (%s/s)", cli.Count(n), cli.Elapsed(elapsed), cli.Count(int64(perSecond(n, elapsed))))
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
