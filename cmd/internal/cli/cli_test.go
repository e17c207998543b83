package cli

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestReportAndCodes(t *testing.T) {
	tests := []struct {
		err  error
		code int
		out  string
	}{
		{nil, ExitOK, ""},
		{errors.New("boom"), ExitFailed, "x: boom\n"},
		{&UsageError{Err: errors.Join(errors.New("a: bad"), errors.New("b: worse"))}, ExitUsage, "x: a: bad\nx: b: worse\n"},
		{fmt.Errorf("wrapped: %w", Exitf(ExitQuorumFailed, "quorum failed")), ExitQuorumFailed, "x: wrapped: quorum failed\n"},
		{Exitf(ExitInterrupted, "interrupted"), ExitInterrupted, "x: interrupted\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if code := Report(&b, "x", tt.err); code != tt.code || b.String() != tt.out {
			t.Errorf("Report(%v) = %d %q, want %d %q", tt.err, code, b.String(), tt.code, tt.out)
		}
	}
}

func TestFormatExitCodes(t *testing.T) {
	got := FormatExitCodes([]ExitCode{{0, "fine"}, {130, "stopped"}})
	if got != "Exit codes:\n    0  fine\n  130  stopped" {
		t.Fatalf("%q", got)
	}
}

func TestFormatVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}
	if got := FormatVersion(bi); got != "v1.2.3 (revision abc123, modified, go1.26.8)" {
		t.Fatal(got)
	}
	if got := FormatVersion(&debug.BuildInfo{}); got != "(devel)" {
		t.Fatal(got)
	}
	if !strings.HasPrefix(Version(), "(devel)") && !strings.HasPrefix(Version(), "v") {
		t.Fatalf("Version() = %q", Version())
	}
}

// TestStatusKeepsLinesApart: a line printed while a progress line is on
// the screen clears it first, and Stop clears it for good.
func TestStatusKeepsLinesApart(t *testing.T) {
	var b syncBuffer
	s := NewStatus(&b)
	ticks := make(chan struct{}, 16)
	s.Start(time.Millisecond, func() string {
		select {
		case ticks <- struct{}{}:
		default:
		}
		return "progress"
	})
	deadline := time.After(10 * time.Second)
	select {
	case <-ticks:
	case <-deadline:
		t.Fatal("no progress line drawn")
	}
	s.Println("event")
	for len(ticks) > 0 {
		<-ticks
	}
	select {
	case <-ticks: // drawn again below the event; Stop waits for the draw
	case <-deadline:
		t.Fatal("progress line not redrawn")
	}
	s.Stop()
	s.Stop()
	out := b.String()
	if !strings.Contains(out, "\r\033[Kprogress") || !strings.Contains(out, "\r\033[Kevent\n") || !strings.HasSuffix(out, "\r\033[K") {
		t.Fatalf("output %q", out)
	}
	plain := NewStatus(&b)
	plain.Stop() // never started: nothing to do
}

func TestRate(t *testing.T) {
	t0 := time.Unix(0, 0)
	r := NewRate(t0)
	if got := r.Per(t0.Add(2*time.Second), 100); got != 50 {
		t.Fatal(got)
	}
	if got := r.Per(t0.Add(2*time.Second), 150); got != 0 {
		t.Fatal("no time passed, yet a rate", got)
	}
}

// TestStatusFinish: Finish replaces the progress line with a final line
// that stays; without Start it writes nothing (not a terminal).
func TestStatusFinish(t *testing.T) {
	var b syncBuffer
	s := NewStatus(&b)
	drawn := make(chan struct{}, 16)
	s.Start(time.Millisecond, func() string {
		select {
		case drawn <- struct{}{}:
		default:
		}
		return "progress"
	})
	select {
	case <-drawn:
	case <-time.After(10 * time.Second):
		t.Fatal("no progress line drawn")
	}
	s.Finish("published 10 messages in 1.0s (10/s)")
	s.Stop()
	if out := b.String(); !strings.HasSuffix(out, "\r\033[Kpublished 10 messages in 1.0s (10/s)\n") {
		t.Fatalf("output %q: want the final line last", out)
	}
	var quiet syncBuffer
	NewStatus(&quiet).Finish("final")
	if quiet.String() != "" {
		t.Fatalf("Finish without Start wrote %q", quiet.String())
	}
}

func TestHumanNumbers(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{850 * time.Millisecond: "850ms", 12400 * time.Millisecond: "12.4s",
		185 * time.Second: "3m05s", 62 * time.Minute: "1h02m"} {
		if got := Elapsed(d); got != want {
			t.Errorf("Elapsed(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{512: "512 B", 1536: "1.5 KiB", 12900000: "12.3 MiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
