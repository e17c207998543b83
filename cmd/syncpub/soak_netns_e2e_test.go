package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// TestSoakNetns is TestSoak across two hosts: the publisher runs in one
// network namespace and three subscribers (two with --state-dir) in
// another, joined by a bridge, for SYNCMQ_SOAK (the same switch; it needs
// root and `ip netns`, and skips saying so otherwise). The publisher's
// --data-dir is a small tmpfs. Faults, one at a time, each bounded: the
// subscribers' host cut off the network for 0.5-3 s (its link down),
// subscribers killed with SIGKILL and restarted, subscribers stopped with
// SIGSTOP for up to 3 s, and the tmpfs filled to the last byte for 0.5-3
// s (the journal's writes fail with ENOSPC; the publisher holds batches
// back until they fit); the first four faults are one of each. Half the time the publisher is killed while the
// disk is full and started again on it: that run must exit non-zero
// naming the full disk; the next starts once the space is back. At the
// end a last publisher publishes and ends a short epoch every subscriber
// must finish, and every run is judged as TestSoak's are.
func TestSoakNetns(t *testing.T) {
	d := soakDuration(t)
	lab := clustertest.NewLab(t, "pub", "sub")
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Room for what the run writes at --rate 300 (about 100 KB/s with the
	// journal's framing) and 4 MiB more: full only when a fault fills it.
	size := 4<<20 + int64(100_000*(d+time.Minute).Seconds())
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dataDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs for the data dir: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", dataDir).Run() })

	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 3))
	t.Logf("seed %d, %v of faults; data dir on a %d KiB tmpfs", seed, d, size>>10)
	j := newPromiseJob(t, d+4*time.Minute)
	j.dataDir, j.pubHost, j.subHost = dataDir, lab.Exec("pub"), lab.Exec("sub")
	ep := func(port int) string { return fmt.Sprintf("tcp://%s:%d", lab.Addr("pub"), port) }
	j.pubEP, j.syncEP, j.recEP = ep(5561), ep(5562), ep(5563)
	pubArgs := func(count int) []string {
		return []string{"--data-dir", dataDir, "--data-bytes", "128MiB", "--expect", "3", "--quorum-timeout", "5s", "--quorum-policy", "proceed",
			"--count", fmt.Sprint(count), "--rate", "300", "--size", "128B", "--topics", "a,b", "--repair-window", "2s"}
	}
	ids := []string{"s0", "s1", "s2"}
	subs := map[string]*proctest.Proc{}
	startSub := func(id string) { subs[id] = j.subscriber(id, id != "s2", "--publisher-timeout", "30s") }
	for _, id := range ids {
		startSub(id)
	}
	pub := j.publisher(pubArgs(100_000_000)...)
	faults := map[string]int{}
	enospc := 0                  // log lines of running publishers naming the full disk
	hold := func(min, max int) { // how long a fault lasts: the schedule, not synchronisation
		<-time.NewTimer(time.Duration(min+r.IntN(max-min)) * time.Millisecond).C
	}
	first := r.Perm(4)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		hold(300, 1500)
		id := ids[r.IntN(len(ids))]
		kind := r.IntN(5)
		if len(first) > 0 { // every kind once first, so a short soak has each
			kind, first = first[0], first[1:]
		}
		switch kind {
		case 0:
			faults["network cut"]++
			lab.Partition("sub")
			hold(500, 3000)
			lab.Heal("sub")
		case 1:
			faults["subscriber SIGKILL"]++
			_ = subs[id].Cmd.Process.Kill()
			j.killed(id, j.runs[id], subs[id])
			startSub(id)
		case 2:
			faults["subscriber SIGSTOP"]++
			_ = subs[id].Cmd.Process.Signal(syscall.SIGSTOP)
			hold(200, 3000)
			_ = subs[id].Cmd.Process.Signal(syscall.SIGCONT)
		case 3:
			faults["disk full"]++
			filler := fillDisk(t, dataDir)
			hold(500, 3000)
			if r.IntN(2) == 0 {
				faults["publisher SIGKILL on a full disk"]++
				_ = pub.Cmd.Process.Kill()
				<-pub.Done()
				enospc += pub.Stderr.Count("no space left on device")
				refusedOnFullDisk(t, j.publisher(pubArgs(100_000_000)...), j)
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			if !running(pub) {
				pub = j.publisher(pubArgs(100_000_000)...)
			}
		case 4:
			// quiet
		}
	}
	_ = pub.Cmd.Process.Kill()
	<-pub.Done()
	enospc += pub.Stderr.Count("no space left on device")
	if faults["disk full"] > 0 && enospc == 0 {
		t.Errorf("the disk was filled %d times, and no publisher ever said a write failed for want of space", faults["disk full"])
	}
	last := j.publisher(pubArgs(300)...)
	j.finishSoak(ids, subs, last)
	var judged uint64
	for _, id := range ids {
		for run := 1; run <= j.runs[id]; run++ {
			c := j.check.Counts(id, run)
			judged += c.Received + c.Lost
		}
	}
	t.Logf("faults %v; %d publisher log lines name the full disk; subscriber runs %v; %d records judged (delivered or reported lost)",
		faults, enospc, j.runs, judged)
}

// fillDisk writes a file into dir until the file system is full and
// returns its name.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for len(buf) > 0 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			buf = buf[:len(buf)/2] // the last pages
		}
	}
	return name
}

// refusedOnFullDisk waits for a publisher started on a full data dir: it
// must exit non-zero and say why.
func refusedOnFullDisk(t *testing.T, p *proctest.Proc, j *promiseJob) {
	t.Helper()
	ctx, cancel := context.WithTimeout(j.ctx, time.Minute)
	defer cancel()
	code := p.Wait(ctx)
	if code == -1 && running(p) {
		_ = p.Cmd.Process.Kill()
		<-p.Done()
		t.Errorf("a publisher started on a full disk still runs after a minute: %s", p.Stderr.String())
		return
	}
	if code == 0 || !strings.Contains(p.Stderr.String(), "no space left on device") {
		t.Errorf("a publisher started on a full disk exited %d: %s", code, p.Stderr.String())
	}
}

func running(p *proctest.Proc) bool {
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}
