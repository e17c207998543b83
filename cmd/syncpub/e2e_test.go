package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// TestZguideJob runs the zguide's synchronized publisher job as separate
// processes: ten `syncsub --output count` and one `syncpub --expect 10
// --count 1000000 --payload Rhubarb`; every subscriber must print
// "Received 1000000 updates" and exit 0.
func TestZguideJob(t *testing.T) {
	count, subs := 1_000_000, 10
	if testing.Short() {
		count = 100_000
	}
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	var procs []*proctest.Proc
	for i := 0; i < subs; i++ {
		procs = append(procs, proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP,
			"--output", "count", "--id", fmt.Sprintf("sub-%d", i), "--log-level", "warn"))
	}
	start := time.Now()
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", fmt.Sprint(subs), "--count", fmt.Sprint(count), "--payload", "Rhubarb", "--log-level", "warn")
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	for i, p := range procs {
		if code := p.Wait(ctx); code != 0 || !zguideOK(p.Stdout.String(), count) {
			t.Errorf("syncsub %d exited %d, printed %q, stderr %s", i, code, p.Stdout.String(), p.Stderr.String())
		}
	}
	t.Logf("zguide job: %d subscribers x %d updates in %v", subs, count, time.Since(start).Round(time.Millisecond))
}

// TestQuorumTimeoutExit: policy fail exits 3 and says how many
// subscribers joined of how many were expected.
func TestQuorumTimeoutExit(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	sub := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "count")
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "3", "--quorum-timeout", "2s", "--quorum-policy", "fail", "--count", "10")
	code := pub.Wait(ctx)
	if code != 3 || !strings.Contains(pub.Stderr.String(), "1 of 3 subscribers joined") {
		t.Fatalf("syncpub exited %d with %q; want 3 and a message naming 1 of 3", code, pub.Stderr.String())
	}
	_ = sub.Cmd.Process.Kill()
}

// TestBadConfig: a bad flag, environment value or config key is a one-line
// error naming the key, exit code 2.
func TestBadConfig(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := dir + "/bad.yaml"
	if err := os.WriteFile(cfg, []byte("expect: 3\nbogus-key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		bin  string
		args []string
		env  string
		want string
	}{
		{"unknown flag", syncpub, []string{"--nope"}, "", "unknown flag: --nope"},
		{"negative expect", syncpub, []string{"--expect", "-2", "--check-config"}, "", "expect"},
		{"bad env", syncpub, []string{"--check-config"}, "SYNCPUB_QUORUM_TIMEOUT=soon", "quorum-timeout"},
		{"unknown config key", syncpub, []string{"--config", cfg, "--check-config"}, "", `unknown key "bogus-key"`},
		{"bad endpoint", syncpub, []string{"--bind", "udp://x", "--check-config"}, "", "bind"},
		{"bad output", syncsub, []string{"--output", "xml", "--check-config"}, "", "output"},
		{"bad policy", syncpub, []string{"--quorum-policy", "maybe", "--check-config"}, "", "quorum-policy"},
		{"quorum without gossip", syncpub, []string{"--quorum", "all", "--check-config"}, "", "give --gossip-bind"},
		{"quorum and expect", syncpub, []string{"--quorum", "2", "--expect", "2", "--join", "127.0.0.1:7946", "--check-config"}, "", "quorum and expect"},
		{"bad quorum", syncpub, []string{"--quorum", "most", "--join", "127.0.0.1:7946", "--check-config"}, "", "quorum"},
		{"bad gossip key", syncsub, []string{"--join", "127.0.0.1:7946", "--check-config"}, "SYNCSUB_GOSSIP_KEY=c2hvcnQ=", "gossip-key"},
		{"bad gossip bind", syncsub, []string{"--gossip-bind", "somewhere", "--check-config"}, "", "gossip-bind"},
		{"bad seed", syncsub, []string{"--join", "nohost", "--check-config"}, "", "Join"},
		{"bad profile", syncpub, []string{"--join", "127.0.0.1:7946", "--gossip-profile", "moon", "--check-config"}, "", "gossip-profile"},
		{"demo bad count", syncpub, []string{"demo", "--count", "lots"}, "", `count: "lots" is not a whole number`},
		{"bench no subscribers", syncpub, []string{"bench", "--subscribers", "0"}, "", "subscribers: need at least 1"},
		{"diagnose negative duration", syncsub, []string{"diagnose", "--duration", "-1s"}, "", "duration: -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env []string
			if tt.env != "" {
				env = []string{tt.env}
			}
			p := proctest.StartEnv(t, ctx, env, tt.bin, tt.args...)
			code := p.Wait(ctx)
			msg := p.Stderr.String()
			if code != 2 || !strings.Contains(msg, tt.want) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line containing %q", code, msg, tt.want)
			}
		})
	}
}

// TestStdinToText publishes input lines (topic<TAB>payload, or payload
// alone on the first --topics topic) and reads them back with syncsub
// --output text, which prints "topic seq payload".
func TestStdinToText(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	sub := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "text", "--subscribe", "news", "--log-level", "warn")
	input := "hello\nnews.sport\tgoal\nweather\tsun\nbye\n"
	pub := proctest.StartInput(t, ctx, nil, strings.NewReader(input), syncpub, "--bind", pubEP, "--sync-bind", syncEP,
		"--recovery-bind", clustertest.FreeEndpoint(t), "--expect", "1", "--stdin", "--topics", "news", "--log-level", "warn")
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	if code := sub.Wait(ctx); code != 0 {
		t.Fatalf("syncsub exited %d: %s", code, sub.Stderr.String())
	}
	want := "news 1 hello\nnews.sport 1 goal\nnews 2 bye\n" // weather is not subscribed
	if got := sub.Stdout.String(); got != want {
		t.Fatalf("syncsub printed %q, want %q", got, want)
	}
}

// zguideOK reports whether a `syncsub --output count` printed the zguide
// line for count updates and then an ok outcome.
func zguideOK(stdout string, count int) bool {
	first, second, _ := strings.Cut(stdout, "\n")
	return first == fmt.Sprintf("Received %d updates", count) && strings.HasPrefix(second, "outcome ok: lost 0,")
}
