// Package ratelog logs events a peer can trigger at will (refused
// connections, malformed packets, hit limits) at most once per interval
// per key, so a flood costs a counter increment, not a log line each.
// Lines that were held back are counted and reported with the next line
// of the same key.
package ratelog

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// DefaultInterval is the interval New uses for a zero interval.
const DefaultInterval = 10 * time.Second

// maxKeys bounds the keys remembered; keys are chosen by the caller from
// a fixed set (a limit's name), never from peer input, but the bound keeps
// a mistake from growing memory.
const maxKeys = 1024

// Logger writes at most one line per key per interval. Safe for
// concurrent use. The zero value is not usable; call New.
type Logger struct {
	lg       *zap.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed uint64
}

// New returns a Logger writing to lg (nil: nothing is written) at most
// once per interval (0: DefaultInterval) per key.
func New(lg *zap.Logger, interval time.Duration) *Logger {
	if lg == nil {
		lg = zap.NewNop()
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Logger{lg: lg, interval: interval, now: time.Now, keys: make(map[string]*entry)}
}

// Warn logs msg with fields at warn level unless key was logged less than
// an interval ago. The line carries "suppressed": how many lines of key
// were held back since the last one written. It reports whether it wrote.
func (l *Logger) Warn(key, msg string, fields ...zap.Field) bool {
	return l.log(zapcore.WarnLevel, key, msg, fields)
}

// Error is Warn at error level.
func (l *Logger) Error(key, msg string, fields ...zap.Field) bool {
	return l.log(zapcore.ErrorLevel, key, msg, fields)
}

// Log is Warn at level.
func (l *Logger) Log(level zapcore.Level, key, msg string, fields ...zap.Field) bool {
	return l.log(level, key, msg, fields)
}

// Info is Warn at info level.
func (l *Logger) Info(key, msg string, fields ...zap.Field) bool {
	return l.log(zapcore.InfoLevel, key, msg, fields)
}

func (l *Logger) log(level zapcore.Level, key, msg string, fields []zap.Field) bool {
	if l == nil || !l.lg.Core().Enabled(level) {
		return false
	}
	now := l.now()
	l.mu.Lock()
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= maxKeys {
			clear(l.keys)
		}
		e = &entry{}
		l.keys[key] = e
	} else if now.Sub(e.last) < l.interval {
		e.suppressed++
		l.mu.Unlock()
		return false
	}
	suppressed := e.suppressed
	e.last, e.suppressed = now, 0
	l.mu.Unlock()
	if suppressed > 0 {
		fields = append(fields[:len(fields):len(fields)], zap.Uint64("suppressed", suppressed))
	}
	if ce := l.lg.Check(level, msg); ce != nil {
		ce.Write(fields...)
	}
	return true
}
