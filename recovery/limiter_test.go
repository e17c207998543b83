package recovery

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

func mustLimiter(t *testing.T, cfg LimiterConfig) *Limiter {
	t.Helper()
	l, err := NewLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLimiterConfigValidate(t *testing.T) {
	if err := DefaultLimiterConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []LimiterConfig{
		{Rate: 0, Burst: 1, MaxKeys: 1},
		{Rate: math.NaN(), Burst: 1, MaxKeys: 1},
		{Rate: math.Inf(1), Burst: 1, MaxKeys: 1},
		{Rate: 1, Burst: 0, MaxKeys: 1},
		{Rate: 1, Burst: 1, MaxKeys: 0},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
		if _, err := NewLimiter(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: NewLimiter %v", c, err)
		}
	}
}

func TestLimiterBurstAndRefill(t *testing.T) {
	l := mustLimiter(t, LimiterConfig{Rate: 10, Burst: 3, MaxKeys: 10})
	for i := 0; i < 3; i++ {
		if !l.Allow("a", t0) {
			t.Fatalf("request %d of the burst denied", i)
		}
	}
	if l.Allow("a", t0) {
		t.Fatal("allowed beyond the burst")
	}
	if d := l.Delay("a", 1, t0); d != 100*time.Millisecond {
		t.Fatalf("Delay = %v, want 100ms", d)
	}
	if l.Allow("a", t0.Add(99*time.Millisecond)) {
		t.Fatal("allowed before a token was earned")
	}
	if !l.Allow("a", t0.Add(100*time.Millisecond)) {
		t.Fatal("denied after a token was earned")
	}
	// Other keys are independent.
	if !l.Allow("b", t0) {
		t.Fatal("b denied")
	}
	// A long idle period refills to Burst, not beyond.
	later := t0.Add(time.Hour)
	if !l.AllowN("a", 3, later) || l.Allow("a", later) {
		t.Fatal("refill not capped at Burst")
	}
	if st := l.Stats(); st.Keys != 2 || st.Allowed != 6 || st.Denied != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLimiterClockGoingBackwards(t *testing.T) {
	l := mustLimiter(t, LimiterConfig{Rate: 1, Burst: 1, MaxKeys: 10})
	if !l.Allow("a", t0) {
		t.Fatal("first denied")
	}
	if l.Allow("a", t0.Add(-time.Hour)) {
		t.Fatal("earlier now earned tokens")
	}
	if !l.Allow("a", t0.Add(time.Second)) {
		t.Fatal("denied a second after")
	}
}

func TestLimiterAllowN(t *testing.T) {
	l := mustLimiter(t, LimiterConfig{Rate: 1, Burst: 5, MaxKeys: 10})
	if !l.AllowN("a", 0, t0) || !l.AllowN("a", -1, t0) {
		t.Fatal("n <= 0 denied")
	}
	if l.AllowN("a", 6, t0) {
		t.Fatal("n above Burst allowed")
	}
	if d := l.Delay("a", 6, t0); d != math.MaxInt64 {
		t.Fatalf("Delay above Burst = %v", d)
	}
	if !l.AllowN("a", 4, t0) || l.AllowN("a", 2, t0) {
		t.Fatal("AllowN spent wrongly")
	}
	if d := l.Delay("a", 2, t0); d != time.Second {
		t.Fatalf("Delay = %v, want 1s", d)
	}
	if d := l.Delay("unknown", 5, t0); d != 0 {
		t.Fatalf("Delay for a new key = %v", d)
	}
}

func TestLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	l := mustLimiter(t, LimiterConfig{Rate: 1, Burst: 1, MaxKeys: 2})
	l.Allow("a", t0)
	l.Allow("b", t0)
	l.Allow("a", t0) // denied, but a is now the most recent
	l.Allow("c", t0) // evicts b
	if st := l.Stats(); st.Keys != 2 || st.Evicted != 1 {
		t.Fatalf("stats %+v", st)
	}
	if l.Allow("a", t0) {
		t.Fatal("a was evicted instead of b")
	}
	if !l.Allow("b", t0) { // b comes back with a full bucket, evicting c
		t.Fatal("b not reset")
	}
	l.Forget("a")
	l.Forget("nope")
	if st := l.Stats(); st.Keys != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !l.Allow("a", t0) {
		t.Fatal("forgotten key not reset")
	}
	// Many keys through a small limiter keep the bound.
	for i := 0; i < 1000; i++ {
		l.Allow(fmt.Sprint(i), t0)
	}
	if st := l.Stats(); st.Keys != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLimiterConcurrent hammers one Limiter from several goroutines; run
// it with -race. The total allowed must equal the tokens available.
func TestLimiterConcurrent(t *testing.T) {
	l := mustLimiter(t, LimiterConfig{Rate: 1, Burst: 100, MaxKeys: 3})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				l.Allow("shared", t0)
				l.Delay("shared", 1, t0)
				l.Stats()
			}
		}()
	}
	wg.Wait()
	if st := l.Stats(); st.Allowed != 100 || st.Denied != 1500 {
		t.Fatalf("stats %+v, want 100 allowed of 1600", st)
	}
}
