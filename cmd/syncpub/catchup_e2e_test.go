package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// slowReader runs syncsub with its stdout read by the test at rate bytes
// per millisecond, and returns the summary line and the exit code once
// it has exited.
type slowReader struct {
	cmd     *exec.Cmd
	done    chan struct{}
	summary map[string]any
	lines   int
	stderr  proctest.Output
	code    int
}

func startSlowReader(t *testing.T, ctx context.Context, bin string, chunk int, args ...string) *slowReader {
	t.Helper()
	r := &slowReader{cmd: exec.CommandContext(ctx, bin, args...), done: make(chan struct{})}
	r.cmd.Stderr = &r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		pr, pw := io.Pipe()
		go func() {
			buf := make([]byte, chunk)
			for range tick.C { // chunk bytes every millisecond: a slow reader
				n, err := out.Read(buf)
				if _, werr := pw.Write(buf[:n]); werr != nil || err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.lines++
			if line := sc.Bytes(); strings.Contains(string(line[:min(len(line), 40)]), `"summary"`) {
				_ = json.Unmarshal(line, &r.summary)
			}
		}
		_ = pr.Close()
		err := r.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			r.code = -1
		}
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// catchUpCount is the records of TestSlowReaderCatchesUpProcess:
// SYNCMQ_CATCHUP_COUNT, or 20,000 (100,000 is the acceptance run, about
// 20 s for the slow reader).
func catchUpCount(t *testing.T) int {
	if s := os.Getenv("SYNCMQ_CATCHUP_COUNT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SYNCMQ_CATCHUP_COUNT=%q", s)
		}
		return n
	}
	return 20_000
}

// TestSlowReaderCatchesUpProcess: `syncpub --expect 2 --size 1024`, one
// `syncsub --output count` and one `syncsub --output json` whose stdout
// is read at about 8 MB/s (8 KiB every millisecond), much slower than
// the publisher. Under the default --slow-policy catch-up the slow one is
// fed from the history at its pace on its data connection and gets every
// record, both exit 0, and the publisher, which waited for its BYE,
// exits 0. The same with the history in a journal (--data-dir).
func TestSlowReaderCatchesUpProcess(t *testing.T) {
	t.Run("memory", func(t *testing.T) { slowReaderJob(t) })
	t.Run("data-dir", func(t *testing.T) { slowReaderJob(t, "--data-dir", t.TempDir()) })
}

func slowReaderJob(t *testing.T, extra ...string) {
	count := catchUpCount(t)
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	fast := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "count", "--id", "fast", "--log-level", "warn")
	// SYNCMQ_CATCHUP_ALONE=1 runs the fast subscriber alone, the baseline
	// of its time (a measurement, not a test).
	alone := os.Getenv("SYNCMQ_CATCHUP_ALONE") != ""
	var slow *slowReader
	expect := "2"
	if alone {
		expect = "1"
	} else {
		slow = startSlowReader(t, ctx, syncsub, 8<<10, "--connect", pubEP, "--sync", syncEP, "--output", "json", "--id", "slow", "--log-level", "warn")
	}
	start := time.Now()
	args := append([]string{"--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", expect, "--count", fmt.Sprint(count), "--size", "1024", "--drain-timeout", "2m", "--log-level", "warn"}, extra...)
	pub := proctest.Start(t, ctx, syncpub, args...)
	if code := fast.Wait(ctx); code != 0 || !zguideOK(fast.Stdout.String(), count) {
		t.Errorf("fast syncsub exited %d, printed %q, stderr %s", code, fast.Stdout.String(), fast.Stderr.String())
	}
	fastTook := time.Since(start)
	if alone {
		t.Logf("%d x 1 KiB: fast subscriber alone done after %v", count, fastTook.Round(time.Millisecond))
		return
	}
	select {
	case <-slow.done:
	case <-ctx.Done():
		t.Fatalf("the slow syncsub did not finish: %d lines read", slow.lines)
	}
	slowTook := time.Since(start)
	if code := pub.Wait(ctx); code != 0 {
		t.Errorf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	got, _ := slow.summary["received"].(float64)
	if slow.code != 0 || int(got) != count {
		t.Errorf("slow syncsub exited %d, received %v of %d (summary %v), stderr %s", slow.code, got, count, slow.summary, slow.stderr.String())
	}
	t.Logf("%d x 1 KiB: fast subscriber done after %v, slow (8 MB/s) after %v, publisher exited after %v",
		count, fastTook.Round(time.Millisecond), slowTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
