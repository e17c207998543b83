package recovery

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// Rate is the sustained number of tokens per second each key earns.
	Rate float64
	// Burst is the bucket size: the most tokens a key can save up, and so
	// the largest n AllowN can ever grant.
	Burst int
	// MaxKeys bounds the number of keys tracked. Tracking a new key when
	// the limit is reached forgets the key used least recently; a forgotten
	// key starts again with a full bucket, so MaxKeys should comfortably
	// exceed the number of subscribers active at once.
	MaxKeys int
}

// DefaultLimiterConfig returns 20 requests per second with bursts of 40,
// for up to 10,000 subscribers.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{Rate: 20, Burst: 40, MaxKeys: 10_000}
}

// Validate reports whether c is usable. Errors wrap ErrConfig.
func (c LimiterConfig) Validate() error {
	switch {
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("%w: limiter Rate %v must be positive and finite", ErrConfig, c.Rate)
	case c.Burst < 1:
		return fmt.Errorf("%w: limiter Burst %d must be at least 1", ErrConfig, c.Burst)
	case c.MaxKeys < 1:
		return fmt.Errorf("%w: limiter MaxKeys %d must be at least 1", ErrConfig, c.MaxKeys)
	}
	return nil
}

type bucket struct {
	key        string
	tokens     float64
	last       time.Time
	prev, next *bucket // recency list, most recent first
}

// Limiter is a token-bucket rate limiter per key (for FETCH requests, the
// subscriber's identity), tracking a bounded number of keys. It is a pure
// state machine: time only advances through the now arguments, and a now
// earlier than one seen before for a key simply earns that key nothing.
//
// Concurrency: a Limiter is safe for concurrent use (a recovery server
// may serve connections from several goroutines); calls serialise on one
// mutex, which is cheap at request rates.
type Limiter struct {
	cfg LimiterConfig

	mu         sync.Mutex
	keys       map[string]*bucket
	head, tail *bucket

	allowed, denied, evicted uint64
}

// NewLimiter returns a Limiter with no keys. It fails if cfg is invalid.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{cfg: cfg, keys: make(map[string]*bucket)}, nil
}

// Allow reports whether key may make one request at now, and if so takes
// a token from its bucket.
func (l *Limiter) Allow(key string, now time.Time) bool { return l.AllowN(key, 1, now) }

// AllowN reports whether key may spend n tokens at now, and if so spends
// them. A denied call spends nothing. n above Burst is never allowed; n of
// 0 or less is always allowed.
func (l *Limiter) AllowN(key string, n int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n <= 0 {
		l.allowed++
		return true
	}
	b := l.bucket(key, now)
	if float64(n) > b.tokens {
		l.denied++
		return false
	}
	b.tokens -= float64(n)
	l.allowed++
	return true
}

// Delay returns how long after now key must wait until AllowN(key, n)
// would succeed, 0 if it would succeed now. It spends nothing. For n above
// Burst it returns the largest Duration.
func (l *Limiter) Delay(key string, n int, now time.Time) time.Duration {
	if n > l.cfg.Burst {
		return math.MaxInt64
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.keys[key]
	if !ok || n <= 0 {
		return 0
	}
	tokens := l.refilled(b, now)
	if float64(n) <= tokens {
		return 0
	}
	d := time.Duration(math.Ceil((float64(n) - tokens) / l.cfg.Rate * float64(time.Second)))
	if d < 1 {
		d = 1
	}
	return d
}

// refilled returns b's tokens as of now without changing b.
func (l *Limiter) refilled(b *bucket, now time.Time) float64 {
	t := b.tokens
	if dt := now.Sub(b.last); dt > 0 {
		t += dt.Seconds() * l.cfg.Rate
		if t > float64(l.cfg.Burst) {
			t = float64(l.cfg.Burst)
		}
	}
	return t
}

// bucket returns key's bucket refilled to now, tracking key if new.
func (l *Limiter) bucket(key string, now time.Time) *bucket {
	b, ok := l.keys[key]
	if ok {
		b.tokens = l.refilled(b, now)
		if now.After(b.last) {
			b.last = now
		}
		l.touch(b)
		return b
	}
	if len(l.keys) >= l.cfg.MaxKeys && l.tail != nil {
		b = l.tail
		l.unlink(b)
		delete(l.keys, b.key)
		l.evicted++
		*b = bucket{}
	} else {
		b = &bucket{}
	}
	b.key, b.tokens, b.last = key, float64(l.cfg.Burst), now
	l.keys[key] = b
	l.touch(b)
	return b
}

func (l *Limiter) touch(b *bucket) {
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

func (l *Limiter) unlink(b *bucket) {
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

// Forget stops tracking key, e.g. when its connection goes away.
func (l *Limiter) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.keys[key]; ok {
		l.unlink(b)
		delete(l.keys, key)
	}
}

// LimiterStats are a Limiter's gauges and counters.
type LimiterStats struct {
	// Keys is the number of keys tracked now.
	Keys int
	// Allowed and Denied count AllowN outcomes.
	Allowed, Denied uint64
	// Evicted counts keys forgotten to stay within MaxKeys.
	Evicted uint64
}

// Stats returns the current gauges and counters.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LimiterStats{Keys: len(l.keys), Allowed: l.allowed, Denied: l.denied, Evicted: l.evicted}
}
