package main

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// TestBadInputExitsTwo: every bad input a user can give, on the command
// line or found when the command starts, exits 2 with one line on stderr
// saying what is wrong; nothing is published and nothing is bound. Each
// configuration problem is found alike by --check-config and by a run,
// so a configuration that checks out runs. Problems only a run can see
// (an address another process holds) exit 2 as well.
func TestBadInputExitsTwo(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	held := listenLoopback(t)
	heldEP := "tcp://" + held
	pubBase := []string{"--bind", clustertest.FreeEndpoint(t), "--sync-bind", clustertest.FreeEndpoint(t),
		"--recovery-bind", clustertest.FreeEndpoint(t), "--expect", "0", "--count", "1", "--log-level", "error"}
	subBase := []string{"--connect", clustertest.FreeEndpoint(t), "--sync", clustertest.FreeEndpoint(t), "--log-level", "error"}
	tests := []struct {
		name    string
		bin     string
		args    []string
		runOnly bool   // only a run can see it; --check-config passes
		want    string // a regexp the one line on stderr matches
	}{
		{"max-queue-bytes 1", syncpub, []string{"--max-queue-bytes", "1"}, false, `^syncpub: max-queue-bytes: 1B is below 4MiB \(queue-bytes\)$`},
		{"bind port 99999", syncpub, []string{"--bind", "tcp://127.0.0.1:99999"}, false, `^syncpub: bind: .*port "99999" is not a number from 0 to 65535$`},
		{"bind port -1", syncpub, []string{"--sync-bind", "tcp://127.0.0.1:-1"}, false, `^syncpub: sync-bind: .*port "-1" is not a number`},
		{"bind host 256.1.1.1", syncpub, []string{"--recovery-bind", "tcp://256.1.1.1:5563"}, false, `^syncpub: recovery-bind: .*host "256.1.1.1" is not an IPv4 address$`},
		{"topic with a tab", syncpub, []string{"--topics", "a\tb"}, false, `^syncpub: topics: topic "a\\tb" contains control characters$`},
		{"topic with an escape", syncpub, []string{"--topics", "ok,\x1b[31mred"}, false, `^syncpub: topics: .* contains control characters$`},
		{"topic twice", syncpub, []string{"--topics", "a,a,b"}, false, `^syncpub: topics: "a" is listed twice$`},
		{"slow-timeout 1ns", syncpub, []string{"--slow-timeout", "1ns"}, false, `^syncpub: slow-timeout: 1ns is below 100ms$`},
		{"heartbeat 1ns", syncpub, []string{"--heartbeat", "1ns"}, false, `^syncpub: heartbeat: 1ns is below 10ms$`},
		{"repair-window 5ns", syncpub, []string{"--repair-window", "5ns"}, false, `^syncpub: repair-window: 5ns is below 100ms$`},
		{"join-timeout 1ms", syncpub, []string{"--join-timeout", "1ms"}, false, `^syncpub: join-timeout: 1ms is below 100ms$`},
		{"drain-timeout 0", syncpub, []string{"--drain-timeout", "0"}, false, `^syncpub: drain-timeout: 0s is below 100ms$`},
		{"size without a unit it knows", syncpub, []string{"--history-bytes", "12x"}, false, `^syncpub: history-bytes: "12x" is not a size like 256MiB`},
		{"payload above the limit", syncpub, []string{"--size", "2MiB"}, false, `^syncpub: size: 2MiB exceeds the 1MiB payload limit$`},
		{"history below a batch", syncpub, []string{"--history-bytes", "64KiB"}, false, `^syncpub: history-bytes: 64KiB is below 1MiB$`},
		{"pprof beyond loopback", syncpub, []string{"--pprof", "0.0.0.0:6060"}, false, `^syncpub: pprof: "0.0.0.0:6060" is not a loopback address`},
		{"metrics-addr port", syncpub, []string{"--metrics-addr", "127.0.0.1:99999"}, false, `^syncpub: metrics-addr: "127.0.0.1:99999": port "99999"`},
		{"unknown command", syncpub, []string{"bogus"}, false, `^syncpub: unknown command "bogus" for "syncpub" \(commands: .*demo`},
		{"stray argument", syncpub, []string{"--count", "10", "extra"}, false, `^syncpub: unknown command "extra"`},
		{"stray argument to demo", syncpub, []string{"demo", "now"}, false, `^syncpub: unexpected argument "now": syncpub demo takes flags only`},
		{"bind in use", syncpub, []string{"--bind", heldEP}, true, `^syncpub: .*` + regexp.QuoteMeta(held) + `.*address already in use$`},
		{"metrics port in use", syncpub, []string{"--metrics-addr", held}, true, `^syncpub: metrics-addr: .*address already in use$`},

		{"repair-timeout 5ns", syncsub, []string{"--repair-timeout", "5ns"}, false, `^syncsub: repair-timeout: 5ns is below 100ms$`},
		{"publisher-timeout 0", syncsub, []string{"--publisher-timeout", "0"}, false, `^syncsub: publisher-timeout: 0s is below 100ms$`},
		{"max-held-bytes 0", syncsub, []string{"--max-held-bytes", "0"}, false, `^syncsub: max-held-bytes: 0 is below 1B$`},
		{"subscribe control characters", syncsub, []string{"--subscribe", "x\x01"}, false, `^syncsub: subscribe: topic "x\\x01" contains control characters$`},
		{"connect-timeout 1ms", syncsub, []string{"--connect-timeout", "1ms"}, false, `^syncsub: connect-timeout: 1ms is below 100ms$`},
		{"connect-timeout negative", syncsub, []string{"--connect-timeout", "-1s"}, false, `^syncsub: connect-timeout: -1s is negative`},
		{"connect port 99999", syncsub, []string{"--connect", "tcp://127.0.0.1:99999"}, false, `^syncsub: connect: .*port "99999" is not a number from 0 to 65535$`},
		{"connect port 0", syncsub, []string{"--connect", "tcp://127.0.0.1:0"}, false, `^syncsub: connect: .*port 0 can only be bound, not connected to$`},
		{"sync host", syncsub, []string{"--sync", "tcp://256.1.1.1:5562"}, false, `^syncsub: sync: .*not an IPv4 address$`},
		{"stray argument", syncsub, []string{"extra"}, false, `^syncsub: unknown command "extra" for "syncsub" \(commands: .*diagnose`},
		{"diagnose stray argument", syncsub, []string{"diagnose", "now"}, false, `^syncsub: unexpected argument "now": syncsub diagnose takes flags only`},
		{"metrics port in use", syncsub, []string{"--metrics-addr", held}, true, `^syncsub: metrics-addr: .*address already in use$`},
	}
	for _, tt := range tests {
		base := pubBase
		if tt.bin == syncsub {
			base = subBase
		}
		for _, check := range []bool{true, false} {
			name := tt.name + "/run"
			if check {
				name = tt.name + "/check-config"
			}
			t.Run(name, func(t *testing.T) {
				args := append(append([]string(nil), base...), tt.args...)
				if check {
					args = append(args, "--check-config")
				}
				if len(tt.args) > 0 && (tt.args[0] == "demo" || tt.args[0] == "diagnose") {
					args = tt.args // a subcommand: its own flags only
				}
				p := proctest.Start(t, ctx, tt.bin, args...)
				code := p.Wait(ctx)
				stderr := strings.TrimSpace(p.Stderr.String())
				if check && tt.runOnly {
					if code != 0 {
						t.Fatalf("--check-config exited %d, want 0 (only a run sees this): %s", code, stderr)
					}
					return
				}
				if code != 2 || strings.Contains(stderr, "\n") || !regexp.MustCompile(tt.want).MatchString(stderr) {
					t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and one line matching %s", code, stderr, tt.want)
				}
			})
		}
	}
}

// listenLoopback holds a loopback port for the test and returns its
// host:port.
func listenLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}
