package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// TestRelayOriginCost measures what a relay tier costs the origin: the
// same job (SYNCMQ_RELAY_BENCH_COUNT records of 100 B at 20,000/s, default
// 200,000) with 2 direct subscribers, then through 2 relays with
// SYNCMQ_RELAY_BENCH_SUBS subscribers each (default 10), every node a
// process, every subscriber printing only its count. It reports the
// origin's CPU time and the bytes it wrote, and checks that every
// subscriber got everything. A measurement, not a test: it runs
// only with SYNCMQ_RELAY_BENCH=1, and asserts nothing about time.
func TestRelayOriginCost(t *testing.T) {
	if os.Getenv("SYNCMQ_RELAY_BENCH") == "" {
		t.Skip("a measurement: set SYNCMQ_RELAY_BENCH=1")
	}
	count, perRelay := envInt("SYNCMQ_RELAY_BENCH_COUNT", 200_000), envInt("SYNCMQ_RELAY_BENCH_SUBS", 10)
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	origin := []string{"--rate", "20000"}

	oPub, oSync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	direct := map[string]*proctest.Proc{}
	for i := range 2 {
		id := fmt.Sprintf("direct-%d", i)
		direct[id] = startCountSub(t, ctx, syncsub, id, oPub, oSync)
	}
	cpuD, wroteD, wallD := measureOrigin(t, ctx, startOrigin(t, ctx, syncpub, oPub, oSync, 2, count, origin...))
	for id, p := range direct {
		checkCount(t, ctx, id, p, count)
	}

	oPub, oSync = clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	var relays []relayNode
	subs := map[string]*proctest.Proc{}
	for _, name := range []string{"relay-a", "relay-b"} {
		r := startRelay(t, ctx, syncpub, name, oPub, oSync, perRelay, "--end-grace", "0")
		relays = append(relays, r)
		for i := range perRelay {
			id := fmt.Sprintf("%s-sub-%d", name, i)
			subs[id] = startCountSub(t, ctx, syncsub, id, r.pub, r.sync)
		}
	}
	cpuR, wroteR, wallR := measureOrigin(t, ctx, startOrigin(t, ctx, syncpub, oPub, oSync, 2, count, origin...))
	for _, r := range relays {
		if code := r.proc.Wait(ctx); code != 0 {
			t.Errorf("%s exited %d: %s", r.name, code, r.proc.Stderr.String())
		}
	}
	for id, p := range subs {
		checkCount(t, ctx, id, p, count)
	}
	t.Logf("%d x 100 B at 20,000/s. origin with 2 direct subscribers: CPU %v, wrote %.1f MiB, wall %v; "+
		"origin with 2 relays x %d subscribers: CPU %v (%.2fx), wrote %.1f MiB (%.2fx), wall %v",
		count, cpuD.Round(time.Millisecond), float64(wroteD)/(1<<20), wallD.Round(time.Millisecond),
		perRelay, cpuR.Round(time.Millisecond), cpuR.Seconds()/cpuD.Seconds(), float64(wroteR)/(1<<20), float64(wroteR)/float64(wroteD), wallR.Round(time.Millisecond))
}

// startCountSub starts `syncsub --output count`: what the subscriber
// prints costs the measurement nothing.
func startCountSub(t *testing.T, ctx context.Context, syncsub, id, pub, sync string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, ctx, syncsub, "--connect", pub, "--sync", sync, "--id", id, "--output", "count", "--log-level", "warn")
}

func checkCount(t *testing.T, ctx context.Context, id string, p *proctest.Proc, count int) {
	t.Helper()
	if code := p.Wait(ctx); code != 0 || !zguideOK(p.Stdout.String(), count) {
		t.Errorf("%s exited %d: %s %s", id, code, p.Stdout.String(), p.Stderr.String())
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// measureOrigin waits for the origin to exit 0 and returns its CPU time
// (user and system), the bytes it wrote (the last /proc/<pid>/io wchar
// seen before it exited: its sockets, and a few log lines) and its wall
// time.
func measureOrigin(t *testing.T, ctx context.Context, p *proctest.Proc) (time.Duration, int64, time.Duration) {
	t.Helper()
	start := time.Now()
	var wrote int64
	path := fmt.Sprintf("/proc/%d/io", p.Cmd.Process.Pid)
	for done := false; !done; {
		if n, ok := readWchar(path); ok {
			wrote = n
		}
		select {
		case <-p.Done():
			done = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	wall := time.Since(start)
	if code := p.Wait(ctx); code != 0 {
		t.Fatalf("origin exited %d: %s", code, p.Stderr.String())
	}
	st := p.Cmd.ProcessState
	return st.UserTime() + st.SystemTime(), wrote, wall
}

func readWchar(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
