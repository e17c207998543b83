package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain runs a mode when the harness re-executes the test binary as
// one of its child processes, and the tests otherwise.
func TestMain(m *testing.M) {
	if mode, args, ok := childMode(); ok {
		runChildMode(mode, args)
	}
	goleak.VerifyTestMain(m)
}

// TestQuickRunCountsEveryMessage runs the harness end to end, --quick, on
// a throughput shape, a latency shape and a late joiner, every system
// that runs them, one run each, and checks that every subscriber counted
// every message and that both clocks, the CPU and the RSS were measured.
func TestQuickRunCountsEveryMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := run(ctx, options{runs: 1, shapes: "size-64,late-1k,latency-1k", quick: true, timeout: 2 * time.Minute}, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeReport(&out, rep)
	t.Log(out.String())
	if len(rep.Shapes) != 3 {
		t.Fatalf("got %d shapes, want 3", len(rep.Shapes))
	}
	for _, sr := range rep.Shapes {
		s := sr.Shape
		for _, sys := range s.systems() {
			rs := sr.Runs[sys]
			if len(rs) != 1 {
				t.Fatalf("%s %s: %d runs, want 1", s.Name, sys, len(rs))
			}
			checkRun(t, s, sys, rs[0])
		}
	}
	for _, want := range []string{"size-64", "late-1k", "latency-1k", "js-file/syncmq-disk", "load average (1, 5, 15 min) at end", "ready clock: from the moment", "whole clock: from the exec"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestManySubscribersInOneProcess runs subs-250, --quick, on every
// system: one subscriber process hosting every subscriber.
func TestManySubscribersInOneProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := run(ctx, options{runs: 1, shapes: "subs-250", quick: true, timeout: 2 * time.Minute}, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	sr := rep.Shapes[0]
	for _, sys := range sr.Shape.systems() {
		if len(sr.Runs[sys]) != 1 {
			t.Fatalf("%s: %d runs, want 1", sys, len(sr.Runs[sys]))
		}
		checkRun(t, sr.Shape, sys, sr.Runs[sys][0])
	}
}

func checkRun(t *testing.T, s shape, sys system, r runResult) {
	t.Helper()
	if r.failed() {
		t.Fatalf("%s %s: %s", s.Name, sys, r.Err)
	}
	want, procs := s.Backlog+s.Count, s.Subs
	if s.InProc {
		want, procs = s.Subs*want, 1
	}
	if len(r.Received) != procs || r.Lost != 0 {
		t.Errorf("%s %s: received %v, lost %d; want %d subscriber processes with %d each", s.Name, sys, r.Received, r.Lost, procs, want)
	}
	for i, n := range r.Received {
		if n != want {
			t.Errorf("%s %s: subscriber %d counted %d, want %d", s.Name, sys, i, n, want)
		}
	}
	if r.Wall <= 0 || r.Whole <= 0 || r.PubRSS <= 0 || r.SubRSS <= 0 || r.SubCPU <= 0 {
		t.Errorf("%s %s: wall %v, whole %v, publisher RSS %d KiB, subscriber RSS %d KiB, subscriber CPU %v; want all measured",
			s.Name, sys, r.Wall, r.Whole, r.PubRSS, r.SubRSS, r.SubCPU)
	}
	if sys.nats() && r.ServerRSS <= 0 {
		t.Errorf("%s %s: nats-server RSS not measured", s.Name, sys)
	}
	if s.late() && (r.CatchUp <= 0 || r.CatchUp > r.Wall) {
		t.Errorf("%s %s: catch-up %v, wall %v; want 0 < catch-up <= wall", s.Name, sys, r.CatchUp, r.Wall)
	}
	if s.latency() && (r.Lat.N != s.Subs*s.Count || r.Lat.P50 <= 0 || r.Lat.P99 < r.Lat.P50) {
		t.Errorf("%s %s: latency %+v; want %d samples with 0 < p50 <= p99", s.Name, sys, r.Lat, s.Subs*s.Count)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	s := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(s, 50); p != 5 {
		t.Errorf("p50 = %d, want 5", p)
	}
	if p := percentile(s, 99); p != 10 {
		t.Errorf("p99 = %d, want 10", p)
	}
	if p := percentile(nil, 50); p != 0 {
		t.Errorf("p50 of nothing = %d, want 0", p)
	}
	if m := median([]time.Duration{3, 1, 2}); m != 2 {
		t.Errorf("median = %d, want 2", m)
	}
	if m := median([]int64{4, 1, 3, 2}); m != 2 {
		t.Errorf("median = %d, want 2 (mean of 2 and 3, truncated)", m)
	}
}

func TestSelectShapes(t *testing.T) {
	got, err := selectShapes("latency-1k, zguide", true, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "zguide" || got[1].Name != "latency-1k" || got[0].Count != 10_000 {
		t.Errorf("got %+v; want zguide (10000 messages) then latency-1k", got)
	}
	if _, err := selectShapes("nope", false, 1); err == nil {
		t.Error("an unknown shape was accepted")
	}
	all, _ := selectShapes("", false, 1)
	if len(all) != len(allShapes()) {
		t.Errorf("empty selection gave %d shapes, want all %d", len(all), len(allShapes()))
	}
}

func TestParseReceived(t *testing.T) {
	if n, err := parseReceived("Received 1000000 updates"); err != nil || n != 1_000_000 {
		t.Errorf("got %d, %v", n, err)
	}
	if _, err := parseReceived("Received"); err == nil {
		t.Error("a line without a count was accepted")
	}
}

// TestFinishInterruptsAStuckSubscriber checks the harness's failure path:
// a subscriber still running after the publisher exited and the grace
// passed is interrupted, its count is read, and the run fails.
func TestFinishInterruptsAStuckSubscriber(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pub, err := startChild("pub", "/bin/sh", []string{"-c", "exit 0"}, childOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done, err := startChild("done", "/bin/sh", []string{"-c", "echo Received 5 updates"}, childOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := startChild("stuck", "/bin/sh", []string{"-c", `trap 'echo Received 3 updates; exit 0' INT; while :; do sleep 0.05; done`}, childOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer killAll(pub, done, stuck)
	got, _, err := finish(ctx, []*child{done, stuck}, pub, time.Now(), 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "after the publisher exited") || !strings.Contains(err.Error(), "it had counted 3") {
		t.Errorf("err = %v; want the stuck subscriber reported with its count", err)
	}
	if len(got) != 2 || got[0] != 5 || got[1] != 3 {
		t.Errorf("counts %v, want [5 3]", got)
	}
}

func TestShortErrorDropsStderrTails(t *testing.T) {
	e := "syncsub 8 not finished 1m0s after the publisher exited; interrupted, it had counted 607434; its stderr ends:\n  a log line\n  another\nsyncpub; its stderr ends:\n  pub line"
	want := "syncsub 8 not finished 1m0s after the publisher exited; interrupted, it had counted 607434"
	if got := shortError(e); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLossCausesSumsSyncsubLogLines(t *testing.T) {
	c := &child{errHead: []line{
		{text: `2026-11-30T01:01:09.633Z	WARN	subscriber	coord/subscriber_stream.go:80	messages lost	{"subscriber": "bench-1", "publisher": "9020cf33", "epoch": 1, "topic": "update", "from": 10, "to": 19, "cause": "repair-timeout"}`},
		{text: `... messages lost	{"subscriber": "bench-1", "publisher": "9020cf33", "epoch": 1, "topic": "update", "from": 30, "to": 34, "cause": "repair-timeout"}`},
		{text: `... messages lost	{"subscriber": "bench-1", "publisher": "9020cf33", "epoch": 1, "topic": "update", "from": 40, "to": 40, "cause": "evicted"}`},
		{text: `... subscriber started	{"id": "bench-1"}`},
	}}
	if got, want := lossCauses(c), "15 (repair-timeout), 1 (evicted)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
