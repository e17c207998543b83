package ratelog

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestOncePerIntervalWithSuppressedCount(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	l := New(zap.New(core), time.Second)
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }

	for i := 0; i < 100; i++ {
		l.Warn("refused", "connection refused", zap.Int("i", i))
	}
	l.Warn("other", "another limit")
	if got := logs.Len(); got != 2 {
		t.Fatalf("%d lines after a burst on two keys, want 2", got)
	}
	now = now.Add(time.Second)
	if !l.Warn("refused", "connection refused") {
		t.Fatal("a line after the interval was held back")
	}
	last := logs.All()[2].ContextMap()
	if last["suppressed"] != uint64(99) {
		t.Fatalf("suppressed = %v, want 99", last["suppressed"])
	}
}

func TestNilAndDisabled(t *testing.T) {
	var l *Logger
	if l.Warn("k", "m") {
		t.Fatal("nil Logger wrote")
	}
	core, logs := observer.New(zap.ErrorLevel)
	if New(zap.New(core), 0).Info("k", "m") || logs.Len() != 0 {
		t.Fatal("a disabled level wrote")
	}
}
