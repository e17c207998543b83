package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/proctest"
)

// TestDemo runs `syncpub demo` as users do: it exits 0, prints the four
// stages each with its ok line and the closing END line, and logs
// nothing by default.
func TestDemo(t *testing.T) {
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := proctest.Start(t, ctx, syncpub, "demo")
	code := p.Wait(ctx)
	out := p.Stdout.String()
	if code != 0 {
		t.Fatalf("demo exited %d: %s\nstdout:\n%s", code, p.Stderr.String(), out)
	}
	if errs := p.Stderr.String(); errs != "" {
		t.Errorf("demo wrote to stderr without --log-level: %q", errs)
	}
	for _, want := range []string{
		"(a) quorum gate: nothing is published before the 3rd subscriber joins",
		"    2 of 3 joined: 0 published, Publish waiting",
		"    3 of 3 joined: quorum reached, the waiting Publish got seq 1",
		"(b) stall and repair: sub-3 stops taking messages on demo.b",
		"cut sub-3 as a slow consumer after",
		"sub-3 reconnected and repaired",
		"(c) late joiner: late-1 joins at demo.a seq 5000 and starts at the earliest record",
		"    replayed 5000 from the publisher's history, then 5000 live",
		"(d) retention exceeded: the publisher keeps at least the last 20000 messages of each topic",
		"reported lost: demo.d 1-",
		"cause before-join",
		"END: every subscriber took everything; 4 of 4 stages as expected in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output has no %q", want)
		}
	}
	if n := strings.Count(out, "\n    ok: "); n != 4 {
		t.Errorf("%d ok lines, want one per stage", n)
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", out)
	}
}

// TestDemoLogsOnlyWhenAsked: --log-level shows the library's log lines
// on stderr.
func TestDemoLogsOnlyWhenAsked(t *testing.T) {
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := proctest.Start(t, ctx, syncpub, "demo", "--subscribers", "2", "--count", "100", "--log-level", "info", "--log-format", "json")
	if code := p.Wait(ctx); code != 0 {
		t.Fatalf("demo exited %d: %s", code, p.Stderr.String())
	}
	if !strings.Contains(p.Stderr.String(), `"msg":"quorum reached, publishing"`) {
		t.Fatalf("no log lines with --log-level info: %q", p.Stderr.String())
	}
}

// TestDemoUsage: bad demo settings exit 2 with one line each.
func TestDemoUsage(t *testing.T) {
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--subscribers", "1"}, "subscribers: 1 is not in 2..16"},
		{[]string{"demo", "--count", "50"}, "count: 50 is not in 100..10000"},
		{[]string{"demo", "--log-level", "loud"}, "log-level"},
	} {
		p := proctest.Start(t, ctx, syncpub, tt.args...)
		code := p.Wait(ctx)
		msg := p.Stderr.String()
		if code != 2 || !strings.Contains(msg, tt.want) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line containing %q", tt.args, code, msg, tt.want)
		}
	}
}
