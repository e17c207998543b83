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
// a throughput shape and a latency shape, both systems, one run each, and
// checks that every subscriber counted every message.
func TestQuickRunCountsEveryMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	results, err := run(ctx, options{runs: 1, shapes: "size-64,latency-1k", quick: true, timeout: 2 * time.Minute}, &out, &progress)
	t.Log(progress.String())
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("got %d shapes, want 2", len(results))
	}
	for _, sr := range results {
		s := sr.shape
		for _, sys := range []system{syncmq, natsrv} {
			rs := sr.runs[sys]
			if len(rs) != 1 {
				t.Fatalf("%s %s: %d runs, want 1", s.name, sys, len(rs))
			}
			r := rs[0]
			if r.err != nil {
				t.Fatalf("%s %s: %v", s.name, sys, r.err)
			}
			if len(r.received) != s.subs || r.lost != 0 {
				t.Errorf("%s %s: received %v, lost %d; want %d subscribers with %d each", s.name, sys, r.received, r.lost, s.subs, s.count)
			}
			for i, n := range r.received {
				if n != s.count {
					t.Errorf("%s %s: subscriber %d counted %d, want %d", s.name, sys, i, n, s.count)
				}
			}
			if r.wall <= 0 || r.pubRSS <= 0 {
				t.Errorf("%s %s: wall %v, publisher RSS %d KiB; want both measured", s.name, sys, r.wall, r.pubRSS)
			}
			if sys == natsrv && r.serverRSS <= 0 {
				t.Errorf("%s: nats-server RSS not measured", s.name)
			}
			if s.latency() && (r.lat.n != s.subs*s.count || r.lat.p50 <= 0 || r.lat.p99 < r.lat.p50) {
				t.Errorf("%s %s: latency %+v; want %d samples with 0 < p50 <= p99", s.name, sys, r.lat, s.subs*s.count)
			}
		}
	}
	for _, want := range []string{"size-64", "latency-1k", "load average (1, 5, 15 min) at end", "wall time: from the moment"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
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
	got, err := selectShapes("latency-1k, zguide", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].name != "zguide" || got[1].name != "latency-1k" || got[0].count != 10_000 {
		t.Errorf("got %+v; want zguide (10000 messages) then latency-1k", got)
	}
	if _, err := selectShapes("nope", false); err == nil {
		t.Error("an unknown shape was accepted")
	}
	all, _ := selectShapes("", false)
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
