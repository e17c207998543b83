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
func (s *Status) Stop() { s.Finish("") }

// Finish ends the progress line and replaces it with line, which stays
// on the screen (nothing when line is empty). Like Stop, it acts once,
// and only when Start was called: without a terminal there is no
// progress line to replace.
func (s *Status) Finish(line string) {
	s.once.Do(func() {
		if s.stop == nil {
			return
		}
		close(s.stop)
		<-s.done
		s.mu.Lock()
		s.clear()
		if line != "" {
			fmt.Fprintln(s.w, line)
		}
		s.mu.Unlock()
	})
}

func (s *Status) clear() {
	if s.shown {
		fmt.Fprint(s.w, "\r\033[K")
		s.shown = false
	}
}

// Count renders n with thousands separators: 1,234,567.
func Count[N ~int | ~int64 | ~uint64](n N) string {
	s := fmt.Sprint(n)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Size renders a byte count for a person: 512 B, 1.5 KiB, 12.3 MiB.
func Size(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n), []string{"KiB", "MiB", "GiB", "TiB"}
	u := -1
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}

// Elapsed renders a duration for a person: 850ms, 12.4s, 3m05s, 1h02m.
func Elapsed(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
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
