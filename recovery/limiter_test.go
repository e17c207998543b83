package recovery

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

func mustLimiter(t testing.TB, cfg LimiterConfig) *Limiter {
	t.Helper()
	l, err := NewLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// smallLimits are round numbers that make waits easy to check: per host 10
// requests/s (burst 3) and 1000 bytes/s (burst 1000), for all hosts 2000
// bytes/s (burst 2000).
func smallLimits() LimiterConfig {
	return LimiterConfig{RequestRate: 10, RequestBurst: 3, HostBytesRate: 1000, HostBytesBurst: 1000,
		GlobalBytesRate: 2000, GlobalBytesBurst: 2000, MaxKeys: 10}
}

func TestLimiterConfigValidate(t *testing.T) {
	if err := DefaultLimiterConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for i, f := range []func(*LimiterConfig){
		func(c *LimiterConfig) { c.RequestRate = 0 },
		func(c *LimiterConfig) { c.RequestRate = math.NaN() },
		func(c *LimiterConfig) { c.RequestRate = math.Inf(1) },
		func(c *LimiterConfig) { c.RequestBurst = 0 },
		func(c *LimiterConfig) { c.HostBytesRate = -1 },
		func(c *LimiterConfig) { c.HostBytesBurst = 0 },
		func(c *LimiterConfig) { c.GlobalBytesRate = math.Inf(1) },
		func(c *LimiterConfig) { c.GlobalBytesBurst = 0 },
		func(c *LimiterConfig) { c.MaxKeys = 0 },
		func(c *LimiterConfig) { *c = LimiterConfig{} },
	} {
		c := DefaultLimiterConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: %v", i, err)
		}
		if _, err := NewLimiter(c); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: NewLimiter %v", i, err)
		}
	}
}

func TestHostKey(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.7:51234": "10.0.0.7",
		"[::1]:80":       "::1",
		"10.0.0.7":       "10.0.0.7",
		"::1":            "::1",
		"host.example:1": "host.example",
		"":               "",
		"[::1]":          "[::1]",
		"[fe80::1]:5563": "fe80::1",
		"host:":          "host",
	} {
		if got := HostKey(in); got != want {
			t.Errorf("HostKey(%q) = %q, want %q", in, got, want)
		}
		if got := HostKey(want); got != want {
			t.Errorf("HostKey(%q) = %q: a key is its own key", want, got)
		}
		if n := testing.AllocsPerRun(10, func() { _ = HostKey(in) }); n != 0 {
			t.Errorf("HostKey(%q): %v allocations", in, n)
		}
	}
}

func TestLimiterRequests(t *testing.T) {
	l := mustLimiter(t, smallLimits())
	for i := 0; i < 3; i++ {
		if !l.Allow("10.0.0.1:1000", t0) {
			t.Fatalf("request %d of the burst denied", i)
		}
	}
	if l.Allow("10.0.0.1:1000", t0) {
		t.Fatal("allowed beyond the burst")
	}
	// A new connection from the same host gets no fresh budget.
	if l.Allow("10.0.0.1:2000", t0) || l.Allow("10.0.0.1", t0) {
		t.Fatal("a new connection from the same host was allowed")
	}
	if l.Allow("10.0.0.1:1000", t0.Add(99*time.Millisecond)) {
		t.Fatal("allowed before a token was earned")
	}
	if !l.Allow("10.0.0.1:3000", t0.Add(100*time.Millisecond)) {
		t.Fatal("denied after a token was earned")
	}
	if !l.Allow("10.0.0.2:1000", t0) {
		t.Fatal("another host denied")
	}
	// A long idle period refills to the burst, not beyond.
	later := t0.Add(time.Hour)
	for i := 0; i < 3; i++ {
		if !l.Allow("10.0.0.1:1", later) {
			t.Fatal("burst not refilled")
		}
	}
	if l.Allow("10.0.0.1:1", later) {
		t.Fatal("refill not capped at the burst")
	}
	if st := l.Stats(); st.Hosts != 2 || st.Allowed != 8 || st.Denied != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLimiterTakeHostBudget(t *testing.T) {
	l := mustLimiter(t, smallLimits())
	if w, ok := l.Take("h:1", 600, t0); !ok || w != 0 {
		t.Fatalf("within the burst: %v, %v", w, ok)
	}
	// 400 left: 600 more must wait for 200 bytes at 1000/s, and take nothing.
	if w, ok := l.Take("h:2", 600, t0); ok || w != 200*time.Millisecond {
		t.Fatalf("beyond the burst: %v, %v; want retry after 200ms", w, ok)
	}
	if w, ok := l.Take("h:3", 600, t0.Add(200*time.Millisecond)); !ok || w != 0 {
		t.Fatalf("after the wait: %v, %v", w, ok)
	}
	// More than the burst is taken from a full bucket and leaves a debt.
	later := t0.Add(time.Hour)
	if w, ok := l.Take("h", 1500, later); !ok || w != 0 {
		t.Fatalf("above the burst: %v, %v", w, ok)
	}
	if w, ok := l.Take("h", 100, later); ok || w != 600*time.Millisecond {
		t.Fatalf("after a debt: %v, %v; want retry after 600ms", w, ok)
	}
	if w, ok := l.Take("h", 1500, later.Add(time.Second)); ok || w != 500*time.Millisecond {
		t.Fatalf("above the burst, bucket not full: %v, %v; want retry after 500ms", w, ok)
	}
	if w, ok := l.Take("h", 0, later); !ok || w != 0 {
		t.Fatal("0 bytes not granted at once")
	}
	if w, ok := l.Take("h", -5, later); !ok || w != 0 {
		t.Fatal("negative bytes not granted at once")
	}
	if st := l.Stats(); st.TakenBytes != 600+600+1500 || st.Deferred != 3 || st.Hosts != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLimiterTakeGlobalBudget(t *testing.T) {
	l := mustLimiter(t, smallLimits())
	// Two hosts take the global burst between them.
	for _, h := range []string{"a:1", "b:1"} {
		if w, ok := l.Take(h, 1000, t0); !ok || w != 0 {
			t.Fatalf("%s: %v, %v", h, w, ok)
		}
	}
	// A third host has its own budget but must wait for the global one:
	// 500 bytes at 2000/s.
	if w, ok := l.Take("c:1", 500, t0); ok || w != 250*time.Millisecond {
		t.Fatalf("third host: %v, %v; want retry after 250ms", w, ok)
	}
	if w, ok := l.Take("c:1", 500, t0.Add(250*time.Millisecond)); !ok || w != 0 {
		t.Fatalf("third host after the wait: %v, %v", w, ok)
	}
}

// TestLimiterOneHostCannotTakeItAll keeps one host asking for more than
// its budget and checks that another still gets its replays at once: the
// busy host is held to its own rate, below the global one, and waiting
// for its own budget holds nothing of the global one.
func TestLimiterOneHostCannotTakeItAll(t *testing.T) {
	l := mustLimiter(t, smallLimits())
	now := t0
	var busy int
	for i := 0; i < 100; i++ {
		now = now.Add(10 * time.Millisecond)
		if _, ok := l.Take("busy", 100, now); ok {
			busy += 100
		}
		if i%10 == 9 {
			if w, ok := l.Take("other", 100, now); !ok {
				t.Fatalf("step %d: the other host must wait %v", i, w)
			}
		}
	}
	// The busy host got its burst plus 990 ms of its rate, in whole
	// batches, not the global rate.
	if busy != 1000+900 {
		t.Fatalf("busy host sent %d bytes in 990 ms, want 1900", busy)
	}
}

// TestLimiterConnectionsShareHostBudget has many connections from one host
// send replays as fast as Take lets them, each retrying when told: together
// they get one host's budget.
func TestLimiterConnectionsShareHostBudget(t *testing.T) {
	cfg := smallLimits()
	cfg.GlobalBytesRate, cfg.GlobalBytesBurst = 1e9, 1e9 // only the host budget binds
	l := mustLimiter(t, cfg)
	const conns, batch = 100, 100
	next := make([]time.Time, conns) // when each connection tries next
	for i := range next {
		next[i] = t0
	}
	end := t0.Add(5 * time.Second)
	sent := 0
	for steps := 0; steps < 1_000_000; steps++ {
		c := 0 // the connection due first
		for i := range next {
			if next[i].Before(next[c]) {
				c = i
			}
		}
		now := next[c]
		if now.After(end) {
			break
		}
		w, ok := l.Take(fmt.Sprintf("192.0.2.1:%d", 40000+c), batch, now)
		if ok {
			sent += batch
			w = time.Millisecond // the next batch is ready a little later
		}
		next[c] = now.Add(w)
	}
	// 5 s at 1000 bytes/s after a 1000-byte burst, and no more.
	if sent != 1000+5*1000 {
		t.Fatalf("%d connections of one host sent %d bytes in 5 s, want 6000", conns, sent)
	}
	if st := l.Stats(); st.Hosts != 1 {
		t.Fatalf("%d hosts tracked for one host", st.Hosts)
	}
}

func TestLimiterClockGoingBackwards(t *testing.T) {
	l := mustLimiter(t, smallLimits())
	if _, ok := l.Take("h", 1000, t0); !ok {
		t.Fatal("burst refused")
	}
	for i := 0; i < 3; i++ {
		l.Allow("h", t0)
	}
	past := t0.Add(-time.Hour)
	if l.Allow("h", past) {
		t.Fatal("an earlier now earned a request")
	}
	if w, ok := l.Take("h", 100, past); ok || w != 100*time.Millisecond {
		t.Fatalf("an earlier now earned bytes: %v, %v", w, ok)
	}
	if !l.Allow("h", t0.Add(100*time.Millisecond)) {
		t.Fatal("denied after a token was earned")
	}
}

func TestLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	cfg := smallLimits()
	cfg.MaxKeys = 2
	cfg.RequestBurst = 1
	l := mustLimiter(t, cfg)
	l.Allow("a:1", t0)
	l.Allow("b:1", t0)
	l.Allow("a:2", t0) // denied, but a is now the most recent
	l.Allow("c:1", t0) // evicts b
	if st := l.Stats(); st.Hosts != 2 || st.Evicted != 1 {
		t.Fatalf("stats %+v", st)
	}
	if l.Allow("a:3", t0) {
		t.Fatal("a was evicted instead of b")
	}
	if !l.Allow("b:1", t0) { // b comes back with full buckets, evicting c
		t.Fatal("b not reset")
	}
	l.Forget("a:9") // any port of the host
	l.Forget("nope")
	if st := l.Stats(); st.Hosts != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !l.Allow("a:1", t0) {
		t.Fatal("forgotten host not reset")
	}
	// Many hosts through a small limiter keep the bound, and the global
	// budget still holds them: 1000 new hosts get 2000 bytes at once in all.
	var immediate int
	for i := 0; i < 1000; i++ {
		if _, ok := l.Take(fmt.Sprint(i), 100, t0); ok {
			immediate++
		}
	}
	if st := l.Stats(); st.Hosts != 2 || immediate != 20 {
		t.Fatalf("stats %+v, %d reservations at once", st, immediate)
	}
}

// TestLimiterConcurrent hammers one Limiter from several goroutines; run
// it with -race. The totals must equal the tokens available.
func TestLimiterConcurrent(t *testing.T) {
	cfg := smallLimits()
	cfg.RequestBurst = 100
	l := mustLimiter(t, cfg)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				l.Allow("shared:1", t0)
				l.Take(fmt.Sprintf("shared:%d", g), 10, t0)
				l.Stats()
			}
		}()
	}
	wg.Wait()
	if st := l.Stats(); st.Allowed != 100 || st.Denied != 1500 || st.TakenBytes != 1000 || st.Deferred != 1500 {
		t.Fatalf("stats %+v, want 100 of 1600 requests and 1000 bytes", st)
	}
}

// BenchmarkLimiter measures the cost of one call, for one host and for
// hosts cycling through a full table.
func BenchmarkLimiter(b *testing.B) {
	hosts := make([]string, 10_000)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("10.%d.%d.%d:40000", i>>16, (i>>8)&255, i&255)
	}
	cfg := DefaultLimiterConfig()
	for _, bc := range []struct {
		name string
		call func(l *Limiter, i int, now time.Time)
	}{
		{"Allow/one-host", func(l *Limiter, _ int, now time.Time) { l.Allow(hosts[0], now) }},
		{"Take/one-host", func(l *Limiter, _ int, now time.Time) { l.Take(hosts[0], 64<<10, now) }},
		{"Take/10k-hosts", func(l *Limiter, i int, now time.Time) { l.Take(hosts[i%len(hosts)], 64<<10, now) }},
		{"Take/evicting", func(l *Limiter, i int, now time.Time) { l.Take(hosts[i%len(hosts)], 64<<10, now) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := cfg
			if bc.name == "Take/evicting" {
				c.MaxKeys = 1000
			}
			l := mustLimiter(b, c)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bc.call(l, i, t0.Add(time.Duration(i)*time.Microsecond))
				i++
			}
		})
	}
	b.Run("Take/parallel", func(b *testing.B) {
		l := mustLimiter(b, cfg)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				l.Take(hosts[i%64], 64<<10, t0.Add(time.Duration(i)*time.Microsecond))
				i++
			}
		})
	})
}
