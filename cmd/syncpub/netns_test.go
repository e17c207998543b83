package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
	"github.com/syncmq/syncmq/membership"
)

// TestMultiHostPartition runs a publisher and two subscribers on three
// "hosts" (network namespaces on a bridge), discovering each other through
// gossip, then cuts one subscriber's host off and reconnects it. The
// publisher must notice the failure and lose its quorum (policy continue:
// it keeps publishing), regain it after the heal, and the cut-off
// subscriber must repair what it missed from the publisher's history:
// both subscribers receive every update.
func TestMultiHostPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 30 s")
	}
	lab := clustertest.NewLab(t, "pub", "s1", "s2")
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	on := func(host, bin string, args ...string) *proctest.Proc {
		argv := append(append(lab.Exec(host)[1:], bin), args...)
		return proctest.Start(t, ctx, "ip", argv...)
	}
	const count, rate = 60_000, 2000
	pubHost := lab.Addr("pub")
	ep := func(port int) string { return fmt.Sprintf("tcp://%s:%d", pubHost, port) }
	pub := on("pub", syncpub, "--bind", ep(5561), "--sync-bind", ep(5562), "--recovery-bind", ep(5563),
		"--gossip-bind", pubHost+":7946", "--gossip-profile", "local", "--node-name", "pub",
		"--quorum", "2", "--quorum-lost", "continue", "--settle", "1s",
		"--count", fmt.Sprint(count), "--rate", fmt.Sprint(rate), "--log-format", "json")
	var subs []*proctest.Proc
	for _, h := range []string{"s1", "s2"} {
		subs = append(subs, on(h, syncsub, "--join", pubHost+":7946", "--gossip-bind", lab.Addr(h)+":7946",
			"--gossip-profile", "local", "--id", h, "--output", "count", "--log-format", "json"))
	}
	defer func() {
		if t.Failed() {
			t.Logf("publisher:\n%s\ns2:\n%s", pub.Stderr.String(), subs[1].Stderr.String())
		}
	}()
	clustertest.WaitFor(t, 30*time.Second, "quorum of 2", func() bool { return pub.Stderr.Count(`"msg":"subscriber joined"`) >= 2 })

	cut := time.Now()
	lab.Partition("s2")
	timings, _ := membership.ProfileTimings(membership.ProfileLocal, 3)
	waitLog(t, pub, timings.DetectionMax+5*time.Second, "subscriber failed", "s2")
	detected := time.Since(cut)
	lost := waitLog(t, pub, 5*time.Second, "quorum lost", "")
	lab.Heal("s2")
	healed := time.Now()
	regained := waitLog(t, pub, 30*time.Second, "quorum regained", "")
	rejoined := time.Since(healed)
	if d := regained.num("published") - lost.num("published"); d < 100 {
		t.Errorf("policy continue, yet only %v messages published while the quorum was lost", d)
	}

	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d", code)
	}
	for i, s := range subs {
		if code := s.Wait(ctx); code != 0 || !zguideOK(s.Stdout.String(), count) {
			t.Errorf("s%d exited %d, printed %q", i+1, code, s.Stdout.String())
		}
	}
	fin, _ := logLine(subs[1], "subscriber finished", "")
	t.Logf("partition of s2: publisher declared it failed after %v (local profile: typical %v, max %v) and lost its quorum (live %v of %v) with %v published; "+
		"after the heal gossip merged again in %v, quorum regained at %v published; s2 received %v updates, %v of them recovered, %v lost, %v gaps, %v disconnects",
		detected.Round(time.Millisecond), timings.DetectionTypical, timings.DetectionMax, lost["live"], lost["need"], lost["published"],
		rejoined.Round(time.Millisecond), regained["published"], fin["received"], fin["recovered"], fin["lost"], fin["gaps"], fin["disconnects"])
}
