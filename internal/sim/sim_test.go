package sim

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOrderAndReplay: events run in time order, ties in the order they
// were scheduled, a stopped timer never runs, and one seed gives the same
// run twice.
func TestOrderAndReplay(t *testing.T) {
	run := func(seed uint64) string {
		s := New(seed, 100)
		var out string
		for i := range 5 {
			d := time.Duration(s.Rand().IntN(3)) * time.Millisecond
			s.After(d, "", func() { out += fmt.Sprintf("%d@%v ", i, s.Elapsed()) })
		}
		stopped := s.After(time.Millisecond, "", func() { out += "stopped " })
		stopped.Stop()
		s.RunUntil(Start.Add(time.Second), func() bool { return false })
		return out
	}
	a, b := run(7), run(7)
	if a != b {
		t.Fatalf("seed 7 ran %q, then %q", a, b)
	}
	var last time.Duration
	var n int
	for _, f := range splitRuns(a) {
		if f.at < last {
			t.Fatalf("out of time order: %q", a)
		}
		last = f.at
		n++
	}
	if n != 5 {
		t.Fatalf("%d events ran, want 5 (the stopped one not): %q", n, a)
	}
}

type ran struct {
	i  int
	at time.Duration
}

func splitRuns(s string) []ran {
	var out []ran
	var r ran
	for {
		var d string
		k, err := fmt.Sscanf(s, "%d@%s ", &r.i, &d)
		if k < 2 || err != nil {
			return out
		}
		r.at, _ = time.ParseDuration(d)
		out = append(out, r)
		s = s[len(fmt.Sprintf("%d@%s ", r.i, d)):]
	}
}
