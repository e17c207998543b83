package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// summaryLine returns syncsub's JSON summary: its last stdout line.
func summaryLine(t *testing.T, p *proctest.Proc) map[string]any {
	t.Helper()
	out := strings.TrimSpace(p.Stdout.String())
	last := out[strings.LastIndexByte(out, '\n')+1:]
	var m map[string]any
	if err := json.Unmarshal([]byte(last), &m); err != nil || m["type"] != "summary" {
		t.Fatalf("last output line %q is not a summary (%v)", last, err)
	}
	return m
}

// TestSIGTERMAfterDrainExitsZero: syncpub stopped by SIGTERM in the middle
// of a stream stops publishing, hands what it published to the subscriber
// (END included) and exits 0; the subscriber receives exactly what was
// published and exits 0 with outcome ok.
func TestSIGTERMAfterDrainExitsZero(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	sub := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "json", "--log-level", "warn")
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "1", "--count", "1000000", "--rate", "2000", "--log-format", "json")
	waitLog(t, pub, 30*time.Second, "quorum reached, publishing", "")
	clustertest.WaitFor(t, 30*time.Second, "500 messages", func() bool { return sub.Stdout.Count(`"type":"message"`) >= 500 })
	if err := pub.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d after SIGTERM: %s", code, pub.Stderr.String())
	}
	done := waitLog(t, pub, time.Second, "done", "")
	if done.str("outcome") != "stopped" {
		t.Fatalf("done line %v: want outcome stopped", done)
	}
	if code := sub.Wait(ctx); code != 0 {
		t.Fatalf("syncsub exited %d: %s", code, sub.Stderr.String())
	}
	sum := summaryLine(t, sub)
	published := done.num("published")
	if sum["outcome"] != "ok" || sum["lost"] != 0.0 || sum["received"] != published || published >= 1_000_000 {
		t.Fatalf("summary %v, publisher published %v: want ok, nothing lost, everything received", sum, published)
	}
	if n := sub.Stdout.Count(`"type":"end"`); n != 1 {
		t.Fatalf("%d end events, want 1", n)
	}
	t.Logf("SIGTERM after %v messages: all received, both exited 0", published)
}

// TestSyncsubConnectTimeout: syncsub whose publisher never answers exits
// 5 once --connect-timeout has passed, with a one-line reason naming the
// endpoint, instead of retrying forever; the JSON summary says
// unreachable.
func TestSyncsubConnectTimeout(t *testing.T) {
	_, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	sub := proctest.Start(t, ctx, syncsub, "--connect", "tcp://127.0.0.1:1", "--sync", "tcp://127.0.0.1:2",
		"--connect-timeout", "2s", "--output", "json", "--log-level", "error")
	if code := sub.Wait(ctx); code != 5 {
		t.Fatalf("syncsub exited %d, want 5: %s", code, sub.Stderr.String())
	}
	took := time.Since(start)
	stderr := strings.TrimSpace(sub.Stderr.String())
	if strings.Contains(stderr, "\n") || !strings.HasPrefix(stderr, "syncsub: no publisher joined within the connect timeout 2s: tcp://127.0.0.1:1 never connected") {
		t.Fatalf("stderr %q: want one line with the reason", stderr)
	}
	if sum := summaryLine(t, sub); sum["outcome"] != "unreachable" || sum["exit_code"] != 5.0 {
		t.Fatalf("summary %v", sum)
	}
	t.Logf("exited 5 after %v: %s", took.Round(time.Millisecond), stderr)
}

// TestSyncsubSIGINTMidStream: syncsub interrupted before END exits 130
// with an "interrupted" summary and a one-line reason.
func TestSyncsubSIGINTMidStream(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	sub := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "json", "--log-level", "error")
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "1", "--count", "1000000", "--rate", "2000", "--log-level", "warn")
	clustertest.WaitFor(t, 30*time.Second, "200 messages", func() bool { return sub.Stdout.Count(`"type":"message"`) >= 200 })
	if err := sub.Cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := sub.Wait(ctx); code != 130 {
		t.Fatalf("syncsub exited %d after SIGINT, want 130: %s", code, sub.Stderr.String())
	}
	if sum := summaryLine(t, sub); sum["outcome"] != "interrupted" || sum["exit_code"] != 130.0 {
		t.Fatalf("summary %v: want outcome interrupted", sum)
	}
	if reason := strings.TrimSpace(sub.Stderr.String()); !strings.HasPrefix(reason, "syncsub: interrupted before END") || strings.Contains(reason, "\n") {
		t.Fatalf("stderr %q: want one line giving the reason", reason)
	}
	_ = pub.Cmd.Process.Kill()
}

// TestBadConfigListsEveryProblem: problems in flags, the environment and
// the file come back together, one line each, exit 2.
func TestBadConfigListsEveryProblem(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(cfg, []byte("topics: [ok]\nqueue-bytes: lots\nbogus-key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		bin   string
		args  []string
		env   []string
		lines int
		want  []string
	}{
		{syncpub, []string{"--expect", "-2", "--quorum-policy", "maybe", "--check-config"}, nil, 2,
			[]string{"syncpub: expect: -2 is negative (flag --expect)", `syncpub: quorum-policy: "maybe" is not one of fail, proceed (flag --quorum-policy)`}},
		{syncpub, []string{"--config", cfg, "--rate", "-5"}, []string{"SYNCPUB_DRAIN_TIMEOUT=30"}, 4,
			[]string{`unknown key "bogus-key"`, `queue-bytes: "lots" is not a size like 256MiB, 64KiB or 4096 (file ` + cfg + `)`,
				"drain-timeout: 30 has no unit", "(environment SYNCPUB_DRAIN_TIMEOUT)", "rate: -5 is negative (flag --rate)"}},
		{syncsub, []string{"--output", "xml", "--max-held-bytes", "x"}, []string{"SYNCSUB_REPAIR_TIMEOUT=later"}, 3,
			[]string{"syncsub: output:", "syncsub: max-held-bytes:", "syncsub: repair-timeout:"}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p := proctest.StartEnv(t, ctx, tt.env, tt.bin, tt.args...)
			code := p.Wait(ctx)
			msg := p.Stderr.String()
			if lines := strings.Count(strings.TrimSpace(msg), "\n") + 1; code != 2 || lines != tt.lines {
				t.Fatalf("exit %d with %d lines, want 2 with %d:\n%s", code, lines, tt.lines, msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr lacks %q:\n%s", w, msg)
				}
			}
			if p.Stdout.String() != "" {
				t.Errorf("stdout %q: want nothing", p.Stdout.String())
			}
		})
	}
}

// TestExampleConfigs: the example files in docs/examples load cleanly,
// and every key in them takes effect (comes from the file).
func TestExampleConfigs(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "docs", "examples")
	for bin, name := range map[string]string{syncpub: "syncpub.yaml", syncsub: "syncsub.yaml"} {
		path := filepath.Join(dir, name)
		p := proctest.Start(t, ctx, bin, "--config", path, "--check-config")
		if code := p.Wait(ctx); code != 0 {
			t.Fatalf("%s --check-config exited %d: %s", name, code, p.Stderr.String())
		}
		out := p.Stdout.String()
		if !strings.HasSuffix(out, "configuration OK\n") {
			t.Fatalf("%s: output does not end with configuration OK:\n%s", name, out)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		keys := 0
		for _, l := range strings.Split(string(raw), "\n") {
			key, _, ok := strings.Cut(l, ":")
			if !ok || key == "" || strings.HasPrefix(key, "#") || strings.HasPrefix(key, " ") {
				continue
			}
			keys++
			if !strings.Contains(out, "\n"+key+" ") || !containsLine(out, key, "file "+path) {
				t.Errorf("%s: key %s does not come from the file:\n%s", name, key, out)
			}
		}
		if keys < 8 {
			t.Errorf("%s: only %d keys; the example should show a realistic configuration", name, keys)
		}
	}
}

// containsLine reports whether out has a line starting with key and
// containing s.
func containsLine(out, key, s string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, key+" ") && strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// TestVersion: --version prints the command's name and a version, exit 0.
func TestVersion(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, bin := range map[string]string{"syncpub": syncpub, "syncsub": syncsub} {
		p := proctest.Start(t, ctx, bin, "--version")
		if code := p.Wait(ctx); code != 0 || !strings.HasPrefix(p.Stdout.String(), name+" ") {
			t.Errorf("%s --version exited %d, printed %q", name, code, p.Stdout.String())
		}
	}
}

// TestSyncsubQuorumFailedExit: a publisher whose quorum times out says so
// (ABORT) before END, and a subscriber that had joined exits 3 rather than
// 0 with "Received 0 updates".
func TestSyncsubQuorumFailedExit(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	sub := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "json", "--log-level", "error")
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "2", "--quorum-timeout", "2s", "--count", "10", "--log-level", "warn")
	if code := pub.Wait(ctx); code != 3 {
		t.Fatalf("syncpub exited %d, want 3: %s", code, pub.Stderr.String())
	}
	if code := sub.Wait(ctx); code != 3 {
		t.Fatalf("syncsub exited %d, want 3: %s", code, sub.Stderr.String())
	}
	if sum := summaryLine(t, sub); sum["outcome"] != "quorum-failed" {
		t.Fatalf("summary %v: want outcome quorum-failed", sum)
	}
}

// TestSyncsubPublisherGoneExit: a publisher killed with SIGKILL and not
// restarted: the subscriber hears nothing for --publisher-timeout, reports
// the unknown tail as lost (publisher-gone) and exits 4, instead of
// waiting forever.
func TestSyncsubPublisherGoneExit(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	sub := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "json",
		"--publisher-timeout", "2s", "--log-level", "error")
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "1", "--count", "1000000", "--rate", "2000", "--log-level", "warn")
	clustertest.WaitFor(t, 30*time.Second, "500 messages", func() bool { return sub.Stdout.Count(`"type":"message"`) >= 500 })
	if err := pub.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := sub.Wait(ctx); code != 4 {
		t.Fatalf("syncsub exited %d, want 4: %s", code, sub.Stderr.String())
	}
	sum := summaryLine(t, sub)
	if sum["outcome"] != "publisher-gone" {
		t.Fatalf("summary %v: want outcome publisher-gone", sum)
	}
	if !strings.Contains(sub.Stdout.String(), `"cause":"publisher-gone"`) {
		t.Fatalf("no publisher-gone loss in the output:\n%s", tail(sub.Stdout.String(), 5))
	}
}

// TestSubscriberRestartResumes: a subscriber killed with SIGKILL mid-stream
// and started again with the same id is told where it first joined and
// delivers everything from there, what it had delivered before included
// (at least once), so the restarted process ends with every message and
// exits 0.
func TestSubscriberRestartResumes(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const count = 30_000
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	args := []string{"--connect", pubEP, "--sync", syncEP, "--id", "s1", "--output", "count", "--log-level", "error"}
	first := proctest.Start(t, ctx, syncsub, args...)
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "1", "--count", fmt.Sprint(count), "--rate", "5000", "--log-format", "json")
	waitLog(t, pub, 30*time.Second, "quorum reached, publishing", "")
	if err := first.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.Done()
	second := proctest.Start(t, ctx, syncsub, args...)
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	if code := second.Wait(ctx); code != 0 || !strings.HasPrefix(second.Stdout.String(), fmt.Sprintf("Received %d updates", count)) {
		t.Fatalf("restarted syncsub exited %d, printed %q: %s", code, second.Stdout.String(), second.Stderr.String())
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
