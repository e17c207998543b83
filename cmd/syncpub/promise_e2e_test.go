package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/internal/proctest"
)

// The promise, tried where events interleave: each test below is one of
// the ways records that were retained used to end up neither delivered
// nor reported, run as processes, and judged by internal/invariant over
// `syncsub --output json` (the simulator's checker).

// promiseJob is the endpoints and checker of one scenario.
type promiseJob struct {
	t                     *testing.T
	ctx                   context.Context
	syncpub, syncsub      string
	pubEP, syncEP, recEP  string
	check                 *invariant.Checker
	runs                  map[string]int // subscriber id -> runs started
	dataDir, stateDirRoot string
	// pubHost and subHost, when set, are the command prefixes that run
	// the publisher and the subscribers on hosts of a clustertest.Lab.
	pubHost, subHost []string
}

func newPromiseJob(t *testing.T, timeout time.Duration) *promiseJob {
	t.Helper()
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &promiseJob{t: t, ctx: ctx, syncpub: syncpub, syncsub: syncsub,
		pubEP: clustertest.FreeEndpoint(t), syncEP: clustertest.FreeEndpoint(t), recEP: clustertest.FreeEndpoint(t),
		check: invariant.New(invariant.Options{RedeliverWindow: 512}), runs: map[string]int{},
		dataDir: t.TempDir(), stateDirRoot: t.TempDir()}
}

func (j *promiseJob) publisher(args ...string) *proctest.Proc {
	base := []string{"--bind", j.pubEP, "--sync-bind", j.syncEP, "--recovery-bind", j.recEP, "--log-format", "json"}
	return j.start(j.pubHost, j.syncpub, append(base, args...))
}

// subscriber starts a run of syncsub id; stateful ones keep a state
// directory across runs.
func (j *promiseJob) subscriber(id string, stateful bool, args ...string) *proctest.Proc {
	j.runs[id]++
	base := []string{"--connect", j.pubEP, "--sync", j.syncEP, "--id", id, "--output", "json", "--log-level", "warn"}
	if stateful {
		if j.runs[id] == 1 {
			j.check.Stateful(id)
		}
		base = append(base, "--state-dir", filepath.Join(j.stateDirRoot, id))
	}
	return j.start(j.subHost, j.syncsub, append(base, args...))
}

// start runs bin, on host when host is a Lab's command prefix.
func (j *promiseJob) start(host []string, bin string, args []string) *proctest.Proc {
	if len(host) == 0 {
		return proctest.Start(j.t, j.ctx, bin, args...)
	}
	argv := append(append(slices.Clone(host[1:]), bin), args...)
	return proctest.Start(j.t, j.ctx, host[0], argv...)
}

// killed feeds a run that was killed (no summary) to the checker.
func (j *promiseJob) killed(id string, run int, p *proctest.Proc) {
	j.t.Helper()
	<-p.Done()
	if _, err := j.check.ReadJSON(id, run, strings.NewReader(p.Stdout.String())); err != nil {
		j.t.Fatalf("%s run %d: %v", id, run, err)
	}
}

// finished waits for a run, feeds it to the checker and judges what it
// says of itself against its events; it returns the exit code and the
// summary.
func (j *promiseJob) finished(id string, run int, p *proctest.Proc) (int, *invariant.Summary) {
	j.t.Helper()
	code := p.Wait(j.ctx)
	sum, err := j.check.ReadJSON(id, run, strings.NewReader(p.Stdout.String()))
	if err != nil {
		j.t.Fatalf("%s run %d: %v", id, run, err)
	}
	j.check.JudgeRun(id, run, sum, code)
	return code, sum
}

// covered checks that run of id reached the end of every stream of the
// epochs it saw with count records each: next is count+1, every record
// delivered or reported lost; it returns the records lost in them.
func (j *promiseJob) covered(id string, run int, counts map[uint64]uint64) {
	j.t.Helper()
	seen := map[uint64]bool{}
	for _, s := range j.check.Streams(id, run) {
		want, ok := counts[s.Epoch]
		if !ok {
			continue
		}
		seen[s.Epoch] = true
		if next, open := j.check.Covered(id, run, s); next != want+1 && !open {
			j.t.Errorf("%s run %d: %s reached %d: %d-%d neither delivered nor reported lost", id, run, s, next-1, next, want)
		}
	}
	for epoch := range counts {
		if !seen[epoch] {
			j.t.Errorf("%s run %d: no events of epoch %d", id, run, epoch)
		}
	}
}

func (j *promiseJob) verdict() {
	j.t.Helper()
	if err := j.check.Err(); err != nil {
		j.t.Fatal(err)
	}
}

// epochOf reads the epoch a publisher logged at its start.
func epochOf(t *testing.T, p *proctest.Proc) uint64 {
	t.Helper()
	return uint64(waitLog(t, p, 10*time.Second, "publisher started", "").num("epoch"))
}

// TestPromiseResumeAfterRestart: a --state-dir subscriber is killed in
// the middle of a --data-dir publisher's job, which ends without it
// (exit 1, naming it). The publisher runs again on the same directory and
// publishes 10 records; the subscriber restarts, resumes the first epoch
// from its checkpoint and repairs its rest from the new publisher, which
// waits for it: nothing neither delivered nor reported, both exit 0.
func TestPromiseResumeAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts processes")
	}
	j := newPromiseJob(t, 3*time.Minute)
	const count = 40_000
	first := j.publisher("--data-dir", j.dataDir, "--expect", "1", "--count", fmt.Sprint(count), "--size", "512B",
		"--rate", "20000", "--repair-window", "500ms")
	sub := j.subscriber("s1", true)
	clustertest.WaitFor(t, 2*time.Minute, "5,000 records", func() bool { return sub.Stdout.Count(`"type":"message"`) >= 5_000 })
	if err := sub.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	j.killed("s1", 1, sub)
	if code := first.Wait(j.ctx); code != 1 || !strings.Contains(first.Stderr.String(), "s1") {
		t.Fatalf("the first publisher exited %d, want 1 naming s1: %s", code, first.Stderr.String())
	}
	second := j.publisher("--data-dir", j.dataDir, "--expect", "1", "--count", "10", "--repair-window", "500ms")
	e1, e2 := epochOf(t, first), epochOf(t, second)
	sub = j.subscriber("s1", true)
	if code, sum := j.finished("s1", 2, sub); code != 0 {
		t.Fatalf("the resumed subscriber exited %d (%+v): %s", code, sum, sub.Stderr.String())
	}
	if code := second.Wait(j.ctx); code != 0 {
		t.Fatalf("the second publisher exited %d: %s", code, second.Stderr.String())
	}
	j.covered("s1", 2, map[uint64]uint64{e1: count, e2: 10})
	j.verdict()
}

// TestPromiseTruncatedJournal: the first epoch ended cleanly, then the
// newest segment of the journal is cut in the middle of a record. A
// subscriber that had been killed in that epoch resumes it from the
// restarted publisher: what the cut took is reported lost
// (beyond-retention), and it exits 1 saying so. The restarted publisher's
// own epoch reached it whole: that one exits 0.
func TestPromiseTruncatedJournal(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts processes")
	}
	j := newPromiseJob(t, 3*time.Minute)
	const count = 40_000
	first := j.publisher("--data-dir", j.dataDir, "--expect", "1", "--count", fmt.Sprint(count), "--size", "1KiB",
		"--rate", "50000", "--repair-window", "500ms")
	sub := j.subscriber("s1", true)
	clustertest.WaitFor(t, 2*time.Minute, "5,000 records", func() bool { return sub.Stdout.Count(`"type":"message"`) >= 5_000 })
	if err := sub.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	j.killed("s1", 1, sub)
	if code := first.Wait(j.ctx); code != 1 {
		t.Fatalf("the first publisher exited %d, want 1: %s", code, first.Stderr.String())
	}
	cut := truncateNewestSegment(t, j.dataDir)
	second := j.publisher("--data-dir", j.dataDir, "--expect", "1", "--count", "10", "--repair-window", "500ms")
	e1, e2 := epochOf(t, first), epochOf(t, second)
	sub = j.subscriber("s1", true)
	code, sum := j.finished("s1", 2, sub)
	if code != 1 || sum == nil || sum.Counts.Lost == 0 {
		t.Fatalf("the resumed subscriber exited %d with %+v: want 1, with what the cut took reported lost: %s", code, sum, sub.Stderr.String())
	}
	// The second publisher's own job, epoch 2, reached its subscriber
	// whole; the first epoch's failure was the first publisher's exit 1.
	if code := second.Wait(j.ctx); code != 0 {
		t.Fatalf("the second publisher exited %d: %s", code, second.Stderr.String())
	}
	j.covered("s1", 2, map[uint64]uint64{e1: count, e2: 10})
	j.verdict()
	t.Logf("cut %d bytes off the newest segment: %d records reported lost", cut, sum.Counts.Lost)
}

// truncateNewestSegment cuts the journal's newest segment file in the
// middle of its last tenth and returns how many bytes it removed.
func truncateNewestSegment(t *testing.T, dir string) int64 {
	t.Helper()
	var segs []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") {
			segs = append(segs, path)
		}
		return err
	})
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	slices.Sort(segs)
	newest := segs[len(segs)-1]
	fi, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	cut := fi.Size()/10 + 7 // not on a record boundary, most likely
	if err := os.Truncate(newest, fi.Size()-cut); err != nil {
		t.Fatal(err)
	}
	return cut
}

// TestPromiseStalledUntilEnd: a subscriber stopped (SIGSTOP) until after
// END falls behind; under the default catch-up it is fed from the
// history and keeps its connection however long it is stopped (were it
// cut, it would repair over the recovery endpoint, which the publisher
// keeps serving for it). Once it runs again it gets what it missed: both
// exit 0, and so does the subscriber that kept up.
func TestPromiseStalledUntilEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a process")
	}
	j := newPromiseJob(t, 3*time.Minute)
	const count = 60_000
	pub := j.publisher("--expect", "2", "--count", fmt.Sprint(count), "--size", "512B", "--rate", "30000",
		"--max-queue-bytes", "2MiB", "--queue-bytes", "256KiB")
	fast := j.subscriber("fast", false)
	slow := j.subscriber("slow", false)
	e := epochOf(t, pub)
	clustertest.WaitFor(t, 2*time.Minute, "10,000 records", func() bool { return slow.Stdout.Count(`"type":"message"`) >= 10_000 })
	if err := slow.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, time.Minute, "END at the subscriber that kept up", func() bool { return fast.Stdout.Count(`"type":"end"`) > 0 })
	if err := slow.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		id string
		p  *proctest.Proc
	}{{"fast", fast}, {"slow", slow}} {
		if code, sum := j.finished(s.id, 1, s.p); code != 0 {
			t.Errorf("%s exited %d (%+v): %s", s.id, code, sum, s.p.Stderr.String())
		}
		j.covered(s.id, 1, map[uint64]uint64{e: count})
	}
	if code := pub.Wait(j.ctx); code != 0 {
		t.Fatalf("the publisher exited %d: %s", code, pub.Stderr.String())
	}
	j.verdict()
}

// TestPromisePublisherGone: a publisher killed without END. The
// subscriber reports the unknown rest, exits 4, and its summary counts
// what its events say (the checker compares them).
func TestPromisePublisherGone(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a process")
	}
	j := newPromiseJob(t, 2*time.Minute)
	pub := j.publisher("--expect", "1", "--count", "1000000", "--rate", "20000")
	sub := j.subscriber("s1", false, "--publisher-timeout", "2s")
	clustertest.WaitFor(t, 2*time.Minute, "2,000 records", func() bool { return sub.Stdout.Count(`"type":"message"`) >= 2_000 })
	if err := pub.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	code, sum := j.finished("s1", 1, sub)
	if code != 4 || sum == nil || sum.Counts.UnknownTails == 0 {
		t.Fatalf("exited %d with %+v: want 4, an unknown tail reported", code, sum)
	}
	j.verdict()
}
