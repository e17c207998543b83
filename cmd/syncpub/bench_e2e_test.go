package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/proctest"
)

// TestBenchQuiet: a small `syncpub bench --raw` announces the raw
// baseline with an estimate, prints the table and the ratio on stdout,
// and lets none of its children's output through (stderr is no terminal,
// so no progress either).
func TestBenchQuiet(t *testing.T) {
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := proctest.Start(t, ctx, syncpub, "bench", "--subscribers", "2", "--count", "2000", "--raw")
	if code := p.Wait(ctx); code != 0 {
		t.Fatalf("bench exited %d: %s\n%s", code, p.Stdout.String(), p.Stderr.String())
	}
	out := p.Stdout.String()
	for _, want := range []string{"raw go-zeromq baseline: expect about", "syncmq (syncpub/syncsub)", "raw go-zeromq (zguide port)", "ratio:"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if p.Stderr.String() != "" {
		t.Errorf("stderr %q: want nothing", p.Stderr.String())
	}
}

// TestBenchShowsFailedChild: a subscriber that fails has its captured
// output shown, and bench exits non-zero.
func TestBenchShowsFailedChild(t *testing.T) {
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fake := filepath.Join(t.TempDir(), "syncsub")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'fake subscriber gives up' >&2\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, ctx, syncpub, "bench", "--subscribers", "1", "--count", "10", "--syncsub", fake, "--timeout", "2s")
	if code := p.Wait(ctx); code != 1 {
		t.Fatalf("bench exited %d, want 1: %s", code, p.Stderr.String())
	}
	errs := p.Stderr.String()
	if !strings.Contains(errs, "subscriber 0 failed (exit status 7)") || !strings.Contains(errs, "fake subscriber gives up") {
		t.Fatalf("stderr does not show the failed child's output:\n%s", errs)
	}
}
