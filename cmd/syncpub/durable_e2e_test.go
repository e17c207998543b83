package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// delivered parses syncsub's JSON output: the sequences delivered per
// epoch, in order. A last line cut off by a SIGKILL is ignored.
func delivered(t *testing.T, out string) map[string][]uint64 {
	t.Helper()
	got := map[string][]uint64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m struct {
			Type  string      `json:"type"`
			Seq   uint64      `json:"seq"`
			Epoch json.Number `json:"epoch"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // the line a SIGKILL cut off
		}
		if m.Type == "message" {
			got[m.Epoch.String()] = append(got[m.Epoch.String()], m.Seq)
		}
	}
	return got
}

// checkExactlyOnce fails unless seqs is 1..n in order, each once, and
// returns n.
func checkExactlyOnce(t *testing.T, what string, seqs []uint64) uint64 {
	t.Helper()
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("%s: message %d has seq %d: want 1..n in order, each once", what, i, s)
		}
	}
	return uint64(len(seqs))
}

// TestDurablePublisherKilled: syncpub with --data-dir publishing at 50,000
// msg/s is killed with SIGKILL at a random moment and restarted on the
// same directory. Each subscriber ends with every message of both epochs
// delivered exactly once and in order, and exits 0: the old epoch's rest
// comes from the journal.
func TestDurablePublisherKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts processes")
	}
	syncpub, syncsub := proctest.Binaries(t)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for run := 0; run < 3; run++ {
		killAfter := 2000 + r.IntN(40_000)
		t.Run(fmt.Sprint("kill-after-", killAfter), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dir := t.TempDir()
			pubEP, syncEP, recEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
			var subs []*proctest.Proc
			for _, id := range []string{"s1", "s2"} {
				subs = append(subs, proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--recovery", recEP,
					"--id", id, "--output", "json", "--log-level", "warn"))
			}
			startPub := func(count int) *proctest.Proc {
				return proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", recEP,
					"--data-dir", dir, "--expect", "2", "--count", fmt.Sprint(count), "--rate", "50000", "--log-format", "json")
			}
			first := startPub(1_000_000)
			clustertest.WaitFor(t, time.Minute, fmt.Sprint(killAfter, " messages"), func() bool {
				return subs[0].Stdout.Count(`"type":"message"`) >= killAfter
			})
			if err := first.Cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-first.Done()
			const count = 5000
			second := startPub(count)
			if code := second.Wait(ctx); code != 0 {
				t.Fatalf("restarted syncpub exited %d: %s", code, second.Stderr.String())
			}
			firstEpoch := waitLog(t, first, time.Second, "publisher started", "").str("epoch")
			secondEpoch := waitLog(t, second, time.Second, "publisher started", "").str("epoch")
			for i, sub := range subs {
				if code := sub.Wait(ctx); code != 0 {
					t.Fatalf("syncsub %d exited %d: %s", i, code, sub.Stderr.String())
				}
				got := delivered(t, sub.Stdout.String())
				old := checkExactlyOnce(t, fmt.Sprint("subscriber ", i, " old epoch"), got[firstEpoch])
				if old < uint64(killAfter) {
					t.Fatalf("subscriber %d: %d of the old epoch, it had %d before the kill", i, old, killAfter)
				}
				if n := checkExactlyOnce(t, fmt.Sprint("subscriber ", i, " new epoch"), got[secondEpoch]); n != count {
					t.Fatalf("subscriber %d: %d of the new epoch, want %d", i, n, count)
				}
				t.Logf("subscriber %d: old epoch 1..%d and new epoch 1..%d, each once, exit 0", i, old, count)
			}
		})
	}
}

// TestDurableSubscriberKilled: syncsub with --state-dir is killed with
// SIGKILL mid-stream and started again on the same directory. What the two
// processes printed together is every message published, and what both
// printed is at most one batch. With killPublisher, the publisher (with
// --data-dir) is killed and restarted too, between the two.
func TestDurableSubscriberKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts processes")
	}
	syncpub, syncsub := proctest.Binaries(t)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for run := 0; run < 4; run++ {
		killPublisher := run%2 == 1
		killAfter := 2000 + r.IntN(30_000)
		t.Run(fmt.Sprintf("kill-after-%d/publisher-too-%v", killAfter, killPublisher), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pubDir, subDir := t.TempDir(), t.TempDir()
			pubEP, syncEP, recEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
			subArgs := []string{"--connect", pubEP, "--sync", syncEP, "--recovery", recEP, "--id", "s",
				"--state-dir", subDir, "--output", "json", "--log-level", "warn"}
			const count = 60_000
			startPub := func(count int) *proctest.Proc {
				return proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", recEP,
					"--data-dir", pubDir, "--expect", "1", "--count", fmt.Sprint(count), "--rate", "10000", "--log-format", "json")
			}
			// The restarted syncsub joins through the data endpoint, which
			// closes at END: at 10,000 msg/s it has at least 2.8 s to start,
			// room for a loaded machine (at 50,000 it had 0.56 s).
			first := proctest.Start(t, ctx, syncsub, subArgs...)
			pub := startPub(count)
			for deadline := time.Now().Add(time.Minute); first.Stdout.Count(`"type":"message"`) < killAfter; time.Sleep(2 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("syncsub printed %d of the %d messages to kill it after within a minute\nsyncsub: %s\nsyncpub: %s",
						first.Stdout.Count(`"type":"message"`), killAfter, tail(first.Stderr.String(), 3000), tail(pub.Stderr.String(), 3000))
				}
			}
			if err := first.Cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-first.Done()
			pubs := []*proctest.Proc{pub}
			if killPublisher {
				if err := pub.Cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				<-pub.Done()
				pub = startPub(count)
				pubs = append(pubs, pub)
			}
			second := proctest.Start(t, ctx, syncsub, subArgs...)
			if code := pub.Wait(ctx); code != 0 {
				t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
			}
			if code := second.Wait(ctx); code != 0 {
				t.Fatalf("restarted syncsub exited %d: %s", code, second.Stderr.String())
			}
			a, b := delivered(t, first.Stdout.String()), delivered(t, second.Stdout.String())
			for _, p := range pubs {
				epoch := waitLog(t, p, time.Second, "publisher started", "").str("epoch")
				seen := map[uint64]int{}
				for _, s := range a[epoch] {
					seen[s]++
				}
				for _, s := range b[epoch] {
					seen[s]++
				}
				var twice []uint64
				var last uint64
				for s := uint64(1); seen[s] > 0; s++ {
					if seen[s] > 1 {
						twice = append(twice, s)
					}
					last = s
				}
				if len(seen) != int(last) {
					t.Fatalf("epoch %s: the two processes delivered %d distinct sequences with a hole before %d", epoch, len(seen), last+1)
				}
				if p == pubs[len(pubs)-1] && last != count {
					t.Fatalf("epoch %s: delivered 1..%d, want 1..%d", epoch, last, count)
				}
				if len(twice) > 0 && twice[len(twice)-1]-twice[0]+1 != uint64(len(twice)) {
					t.Fatalf("epoch %s: delivered twice %v: not one contiguous batch", epoch, twice)
				}
				t.Logf("epoch %s: 1..%d delivered, %d of them twice (the batch in flight at the kill)", epoch, last, len(twice))
			}
		})
	}
}
