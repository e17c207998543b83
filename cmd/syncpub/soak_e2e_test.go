package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/proctest"
)

// TestSoak runs a data-dir publisher and three state-dir subscribers as
// processes under a random schedule of faults for SYNCMQ_SOAK (a
// duration; unset skips it, CI runs 10s as a step of its own):
// subscribers killed with SIGKILL
// and restarted, subscribers stopped with SIGSTOP for up to 3 s, the
// publisher killed and restarted on its directory. Then a last
// incarnation publishes a short epoch and ends it, and every subscriber
// must finish: every run is judged by internal/invariant over its
// --output json, the final runs' summaries and exit codes against their
// events. docs/testing.md shows a long run.
func TestSoak(t *testing.T) {
	d := soakDuration(t)
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 2))
	t.Logf("seed %d, %v of faults", seed, d)
	j := newPromiseJob(t, d+3*time.Minute)
	pubArgs := func(count int) []string {
		return []string{"--data-dir", j.dataDir, "--expect", "3", "--quorum-timeout", "5s", "--quorum-policy", "proceed",
			"--count", fmt.Sprint(count), "--rate", "2000", "--size", "256B", "--topics", "a,b", "--repair-window", "2s"}
	}
	ids := []string{"s0", "s1", "s2"}
	subs := map[string]*proctest.Proc{}
	startSub := func(id string) { subs[id] = j.subscriber(id, true, "--publisher-timeout", "30s") }
	for _, id := range ids {
		startSub(id)
	}
	pub := j.publisher(pubArgs(100_000_000)...)
	faults := map[string]int{}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		pause := time.NewTimer(time.Duration(300+r.IntN(1200)) * time.Millisecond) // the fault schedule, not synchronisation
		<-pause.C
		id := ids[r.IntN(len(ids))]
		switch r.IntN(5) {
		case 0, 1:
			faults["subscriber SIGKILL"]++
			_ = subs[id].Cmd.Process.Kill()
			j.killed(id, j.runs[id], subs[id])
			startSub(id)
		case 2:
			faults["subscriber SIGSTOP"]++
			_ = subs[id].Cmd.Process.Signal(syscall.SIGSTOP)
			stop := time.NewTimer(time.Duration(200+r.IntN(2800)) * time.Millisecond)
			<-stop.C
			_ = subs[id].Cmd.Process.Signal(syscall.SIGCONT)
		case 3:
			faults["publisher SIGKILL"]++
			_ = pub.Cmd.Process.Kill()
			<-pub.Done()
			pub = j.publisher(pubArgs(100_000_000)...)
		case 4:
			// quiet
		}
	}
	// The end: the running incarnation is stopped without END, and a last
	// one publishes and ends a short epoch every subscriber must finish.
	_ = pub.Cmd.Process.Kill()
	<-pub.Done()
	last := j.publisher(pubArgs(2000)...)
	j.finishSoak(ids, subs, last)
	t.Logf("faults %v; subscriber runs %v", faults, j.runs)
}

// soakDuration is how long a soak injects faults: SYNCMQ_SOAK, a
// duration; unset (or -short) skips the test.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	if testing.Short() {
		t.Skip("kills processes")
	}
	s := os.Getenv("SYNCMQ_SOAK")
	if s == "" {
		t.Skip("SYNCMQ_SOAK=10s runs it")
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("SYNCMQ_SOAK=%q: want a duration", s)
	}
	return d
}

// finishSoak waits for every subscriber's last run and the last publisher
// (each may exit 0 or 1: a soak's faults may cost records, reported) and
// judges every run of every subscriber.
func (j *promiseJob) finishSoak(ids []string, subs map[string]*proctest.Proc, last *proctest.Proc) {
	t := j.t
	t.Helper()
	for _, id := range ids {
		code, sum := j.finished(id, j.runs[id], subs[id])
		if code != 0 && code != 1 {
			t.Errorf("%s run %d exited %d (%+v): %s", id, j.runs[id], code, sum, subs[id].Stderr.String())
		}
	}
	if code := last.Wait(j.ctx); code != 0 && code != 1 {
		t.Errorf("the last publisher exited %d: %s", code, last.Stderr.String())
	}
	j.verdict()
}
