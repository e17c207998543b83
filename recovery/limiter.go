package recovery

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// LimiterConfig configures a Limiter. Rates and bursts of replay bytes
// count the bytes of the REPLAY frames a server sends (envelope topic,
// header and payload frames).
type LimiterConfig struct {
	// RequestRate is the sustained number of recovery requests per second
	// one host may make. It guards against floods of tiny requests; the
	// bandwidth replays take is bounded by the byte rates. Must be positive.
	RequestRate float64
	// RequestBurst is the most requests a host may make at once after
	// being idle. Must be at least 1.
	RequestBurst int
	// HostBytesRate is the sustained replay bandwidth one host may take,
	// in bytes per second, shared by all its connections. Must be positive.
	HostBytesRate float64
	// HostBytesBurst is the most replay bytes a host may take at once
	// after being idle, in bytes. Must be at least 1.
	HostBytesBurst int64
	// GlobalBytesRate is the sustained replay bandwidth of all hosts
	// together, in bytes per second: the share of the link replays may
	// take. Must be positive.
	GlobalBytesRate float64
	// GlobalBytesBurst is the most replay bytes all hosts together may
	// take at once after being idle, in bytes. Must be at least 1.
	GlobalBytesBurst int64
	// MaxKeys bounds the hosts tracked. Tracking a new host when the limit
	// is reached forgets the host used least recently; a forgotten host
	// starts again with full buckets (its debt forgiven), so MaxKeys should
	// comfortably exceed the number of hosts repairing at once. The global
	// bucket is not affected. Must be at least 1.
	MaxKeys int
}

// Limiter defaults, see DefaultLimiterConfig.
const (
	// DefaultHostBytesRate is the replay bandwidth one host may take: 16 MiB/s.
	DefaultHostBytesRate = 16 << 20
	// DefaultGlobalBytesRate is the replay bandwidth of all hosts together: 64 MiB/s.
	DefaultGlobalBytesRate = 64 << 20
)

// DefaultLimiterConfig returns, per host, 100 requests/s with bursts of
// 200 and 16 MiB/s of replays with bursts of 16 MiB; for all hosts
// together 64 MiB/s of replays with bursts of 64 MiB (about half a
// 1 Gbit/s link); up to 10,000 hosts.
//
// At these rates a subscriber host repairs a 3 s outage of 20,000 records/s
// of 1 KiB (60 MiB) in about 2.7 s, holding about 55 MiB of live records
// meanwhile, within DefaultMaxHeldBytes.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{
		RequestRate:      100,
		RequestBurst:     200,
		HostBytesRate:    DefaultHostBytesRate,
		HostBytesBurst:   DefaultHostBytesRate,
		GlobalBytesRate:  DefaultGlobalBytesRate,
		GlobalBytesBurst: DefaultGlobalBytesRate,
		MaxKeys:          10_000,
	}
}

func validRate(r float64) bool { return r > 0 && !math.IsInf(r, 0) }

// Validate reports every problem of c. Errors wrap ErrConfig.
func (c LimiterConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: limiter "+format, append([]any{ErrConfig}, args...)...))
	}
	if !validRate(c.RequestRate) {
		bad("RequestRate %v must be positive and finite", c.RequestRate)
	}
	if c.RequestBurst < 1 {
		bad("RequestBurst %d must be at least 1", c.RequestBurst)
	}
	if !validRate(c.HostBytesRate) {
		bad("HostBytesRate %v must be positive and finite", c.HostBytesRate)
	}
	if c.HostBytesBurst < 1 {
		bad("HostBytesBurst %d must be at least 1", c.HostBytesBurst)
	}
	if !validRate(c.GlobalBytesRate) {
		bad("GlobalBytesRate %v must be positive and finite", c.GlobalBytesRate)
	}
	if c.GlobalBytesBurst < 1 {
		bad("GlobalBytesBurst %d must be at least 1", c.GlobalBytesBurst)
	}
	if c.MaxKeys < 1 {
		bad("MaxKeys %d must be at least 1", c.MaxKeys)
	}
	return errors.Join(errs...)
}

// tokenBucket earns rate tokens per second up to burst. Its tokens may be
// negative after a Take larger than the burst: a debt paid off before the
// next Take.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// refill earns the tokens due at now. A now not after the last one seen
// earns nothing, so a clock going backwards cannot mint tokens.
func (b *tokenBucket) refill(now time.Time, rate, burst float64) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(burst, b.tokens+dt.Seconds()*rate)
		b.last = now
	}
}

// shortfall returns how long until b holds need tokens, earning rate per
// second; 0 if it does now.
func (b *tokenBucket) shortfall(need, rate float64) time.Duration {
	if b.tokens >= need {
		return 0
	}
	d := time.Duration(math.Ceil((need - b.tokens) / rate * float64(time.Second)))
	return max(d, 1)
}

type hostBuckets struct {
	key        string
	req, bytes tokenBucket
	prev, next *hostBuckets // recency list, most recent first
}

// Limiter rate-limits a recovery server per source host and as a whole:
// requests per host (Allow), and replay bytes per host and for all hosts
// together (Take). Hosts are keyed by address without the port, so
// every connection from one host shares that host's budget, and the number
// of hosts tracked is bounded (least recently used forgotten first).
//
// It is a pure state machine: time only advances through the now
// arguments, and a now earlier than one already seen earns nothing.
//
// Concurrency: a Limiter is safe for concurrent use (a recovery server
// serves connections from several goroutines); calls serialise on one
// mutex, held for well under a microsecond.
type Limiter struct {
	cfg LimiterConfig

	mu         sync.Mutex
	keys       map[string]*hostBuckets
	head, tail *hostBuckets
	global     tokenBucket

	allowed, denied, taken, deferred, evicted uint64
}

// NewLimiter returns a Limiter with no hosts and a full global bucket. It
// fails if cfg is invalid.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{cfg: cfg, keys: make(map[string]*hostBuckets), global: tokenBucket{tokens: float64(cfg.GlobalBytesBurst)}}, nil
}

// HostKey returns the key Limiter uses for a remote address: the host
// without the port ("10.0.0.7:51234" and "[::1]:80" become "10.0.0.7" and
// "::1"); an address without a port is its own key.
//
// It is called on every replayed message with a key it returned before,
// so it parses by hand: net.SplitHostPort allocates an error for an
// address without a port.
func HostKey(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	switch {
	case i < 0:
		return addr // a host without a port
	case addr[0] == '[':
		if j := strings.IndexByte(addr, ']'); j == i-1 {
			return addr[1:j] // [v6]:port
		}
		return addr
	case strings.IndexByte(addr[:i], ':') >= 0:
		return addr // a bare IPv6 address
	}
	return addr[:i]
}

// Allow reports whether host (an address, with or without port; see
// HostKey) may make one more recovery request at now, and if so counts it.
// A denied request counts nothing against the host. It does not block.
func (l *Limiter) Allow(host string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.host(HostKey(host), now)
	b.req.refill(now, l.cfg.RequestRate, float64(l.cfg.RequestBurst))
	if b.req.tokens < 1 {
		l.denied++
		return false
	}
	b.req.tokens--
	l.allowed++
	return true
}

// Take asks to send n replay bytes to host (an address, with or without
// port; see HostKey) at now. If both the host's and the global budget
// hold n bytes, they are taken and ok is true: send now. Otherwise nothing
// is taken, ok is false, and retryAfter says when the budgets will hold
// enough if nobody else takes from them meanwhile: wait that long and ask
// again, or, if the wait is more than the client should be kept waiting,
// answer "rate limited". A budget is never spent ahead of time, so a host
// waiting for its own budget holds nothing of the global one.
//
// n above a burst is taken once the bucket is full and leaves it in debt,
// which later calls wait out, so the rates hold for any n. n of 0 or less
// is always granted. Take does not block.
func (l *Limiter) Take(host string, n int, now time.Time) (retryAfter time.Duration, ok bool) {
	hostWait, globalWait := l.TakeSplit(host, n, now)
	retryAfter = max(hostWait, globalWait)
	return retryAfter, retryAfter == 0
}

// TakeSplit is Take that tells the two budgets apart: hostWait is how
// long until host's own budget holds n bytes, globalWait the same for
// the budget of all hosts; both are zero when the bytes were taken. A
// caller that waits its turn (Turns) waits out hostWait without its
// turn, since it keeps nobody else from their budget, and globalWait
// with it.
func (l *Limiter) TakeSplit(host string, n int, now time.Time) (hostWait, globalWait time.Duration) {
	if n <= 0 {
		return 0, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.host(HostKey(host), now)
	hostBurst, globalBurst := float64(l.cfg.HostBytesBurst), float64(l.cfg.GlobalBytesBurst)
	b.bytes.refill(now, l.cfg.HostBytesRate, hostBurst)
	l.global.refill(now, l.cfg.GlobalBytesRate, globalBurst)
	need := float64(n)
	hostWait = b.bytes.shortfall(min(need, hostBurst), l.cfg.HostBytesRate)
	globalWait = l.global.shortfall(min(need, globalBurst), l.cfg.GlobalBytesRate)
	if hostWait > 0 || globalWait > 0 {
		l.deferred++
		return hostWait, globalWait
	}
	b.bytes.tokens -= need
	l.global.tokens -= need
	l.taken += uint64(n)
	return 0, 0
}

// host returns key's buckets, tracking key with full buckets if new.
func (l *Limiter) host(key string, now time.Time) *hostBuckets {
	b, ok := l.keys[key]
	if ok {
		l.touch(b)
		return b
	}
	if len(l.keys) >= l.cfg.MaxKeys && l.tail != nil {
		b = l.tail
		l.unlink(b)
		delete(l.keys, b.key)
		l.evicted++
		*b = hostBuckets{}
	} else {
		b = &hostBuckets{}
	}
	b.key = key
	b.req = tokenBucket{tokens: float64(l.cfg.RequestBurst), last: now}
	b.bytes = tokenBucket{tokens: float64(l.cfg.HostBytesBurst), last: now}
	l.keys[key] = b
	l.touch(b)
	return b
}

func (l *Limiter) touch(b *hostBuckets) {
	if l.head == b {
		return
	}
	l.unlink(b)
	b.next = l.head
	if l.head != nil {
		l.head.prev = b
	}
	l.head = b
	if l.tail == nil {
		l.tail = b
	}
}

func (l *Limiter) unlink(b *hostBuckets) {
	if b.prev != nil {
		b.prev.next = b.next
	} else if l.head == b {
		l.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else if l.tail == b {
		l.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

// Forget stops tracking host (an address, with or without port), e.g.
// when its last connection went away. Its next request starts with full
// buckets; the global bucket is not affected. Idempotent.
func (l *Limiter) Forget(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.keys[HostKey(host)]; ok {
		l.unlink(b)
		delete(l.keys, b.key)
	}
}

// LimiterStats are a Limiter's gauges and counters.
type LimiterStats struct {
	// Hosts is the number of hosts tracked now.
	Hosts int
	// Allowed and Denied count Allow outcomes (requests).
	Allowed, Denied uint64
	// TakenBytes counts the bytes Take granted; Deferred counts the Take
	// calls told to retry later.
	TakenBytes, Deferred uint64
	// Evicted counts hosts forgotten to stay within MaxKeys.
	Evicted uint64
}

// Stats returns the current gauges and counters.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LimiterStats{Hosts: len(l.keys), Allowed: l.allowed, Denied: l.denied,
		TakenBytes: l.taken, Deferred: l.deferred, Evicted: l.evicted}
}
