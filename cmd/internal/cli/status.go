package cli

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Status writes lines to stderr and, on a terminal, keeps one progress
// line below them that it redraws at most once per interval. Lines
// printed with Println never mix with the progress line: it is cleared
// first and redrawn on the next tick. Safe from any goroutine.
type Status struct {
	w io.Writer

	mu    sync.Mutex
	shown bool // a progress line is on the screen

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewStatus writes to w; progress stays off until Start.
func NewStatus(w io.Writer) *Status { return &Status{w: w} }

// Start redraws line() every interval until Stop. Call it at most once,
// and only when w is a terminal: the progress line uses a carriage return
// and an ANSI erase.
func (s *Status) Start(interval time.Duration, line func() string) {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.mu.Lock()
				fmt.Fprintf(s.w, "\r\033[K%s", line())
				s.shown = true
				s.mu.Unlock()
			case <-s.stop:
				return
			}
		}
	}()
}

// Println clears the progress line, if any, and writes a line.
func (s *Status) Println(a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clear()
	fmt.Fprintln(s.w, a...)
}

// Write writes p below the progress line, for a logger: the progress line
// is cleared first and redrawn on the next tick.
func (s *Status) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clear()
	return s.w.Write(p)
}

// Stop ends the progress line and clears it. Idempotent; a no-op when
// Start was not called.
func (s *Status) Stop() {
	s.once.Do(func() {
		if s.stop == nil {
			return
		}
		close(s.stop)
		<-s.done
		s.mu.Lock()
		s.clear()
		s.mu.Unlock()
	})
}

func (s *Status) clear() {
	if s.shown {
		fmt.Fprint(s.w, "\r\033[K")
		s.shown = false
	}
}

// Rate turns a growing counter into "count and rate since the last call"
// for progress lines.
type Rate struct {
	last  time.Time
	lastN uint64
}

// NewRate starts measuring at now.
func NewRate(now time.Time) *Rate { return &Rate{last: now} }

// Per returns the rate per second of n since the previous call.
func (r *Rate) Per(now time.Time, n uint64) float64 {
	el := now.Sub(r.last).Seconds()
	d := n - r.lastN
	r.last, r.lastN = now, n
	if el <= 0 {
		return 0
	}
	return float64(d) / el
}
