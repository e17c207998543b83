package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
	"github.com/syncmq/syncmq/membership"
)

// TestClusterProcessesPause is the membership acceptance test with
// separate processes: five subscribers know only the publisher's gossip
// address, and the publisher waits for all five. One is killed with
// SIGKILL; the publisher's live count drops within the failure-detection
// time, publishing pauses (policy pause), and resumes when a replacement
// joins. The survivors receive everything.
func TestClusterProcessesPause(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 20 s")
	}
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const count, rate = 40_000, 2000
	pub := proctest.Start(t, ctx, syncpub, "--bind", clustertest.FreeEndpoint(t), "--sync-bind", clustertest.FreeEndpoint(t), "--recovery-bind", clustertest.FreeEndpoint(t),
		"--gossip-bind", "127.0.0.1:0", "--gossip-profile", "local", "--node-name", "pub",
		"--quorum", "5", "--quorum-lost", "pause", "--settle", "1s",
		"--count", fmt.Sprint(count), "--rate", fmt.Sprint(rate), "--log-format", "json")
	var seed string
	clustertest.WaitFor(t, 20*time.Second, "the publisher's gossip address", func() bool {
		m := regexp.MustCompile(`--join (127\.0\.0\.1:\d+)`).FindStringSubmatch(pub.Stderr.String())
		if m != nil {
			seed = m[1]
		}
		return m != nil
	})
	startSub := func(name string) *proctest.Proc {
		return proctest.Start(t, ctx, syncsub, "--join", seed, "--gossip-profile", "local", "--id", name,
			"--output", "count", "--log-level", "warn")
	}
	var subs []*proctest.Proc
	for i := 1; i <= 4; i++ {
		subs = append(subs, startSub(fmt.Sprintf("s%d", i)))
	}
	victim := startSub("victim")
	clustertest.WaitFor(t, 30*time.Second, "quorum of 5", func() bool { return pub.Stderr.Count(`"msg":"subscriber joined"`) >= 5 })
	// Killed after the start: one that leaves before it is forgotten, since
	// nothing was published that it could miss.
	waitLog(t, pub, 30*time.Second, "quorum reached, publishing", "")

	killed := time.Now()
	if err := victim.Cmd.Process.Kill(); err != nil { // SIGKILL: no leave, no bye
		t.Fatal(err)
	}
	timings, _ := membership.ProfileTimings(membership.ProfileLocal, 6)
	waitLog(t, pub, timings.DetectionMax+5*time.Second, "subscriber failed", "victim")
	detected := time.Since(killed)
	lost := waitLog(t, pub, 5*time.Second, "quorum lost", "")
	if lost.num("live") != 4 || lost.num("need") != 5 {
		t.Fatalf("quorum lost with live %v need %v, want 4 and 5", lost["live"], lost["need"])
	}

	// Hold the replacement back a second, so the pause is long enough to
	// measure: unpaused, 2,000 more messages would go out meanwhile.
	hold := time.NewTimer(time.Second) // a window to measure, not synchronisation
	<-hold.C
	replacement := startSub("replacement")
	defer func() {
		if t.Failed() {
			t.Logf("publisher:\n%s\nreplacement:\n%s", pub.Stderr.String(), replacement.Stderr.String())
		}
	}()
	regained := waitLog(t, pub, 30*time.Second, "quorum regained", "")
	paused := time.Duration((regained.num("ts") - lost.num("ts")) * float64(time.Second))
	// At 2000 msg/s an unpaused publisher would have sent about
	// 2 × paused-milliseconds messages meanwhile; allow what was already
	// queued when the loss was noticed.
	if paused < time.Second {
		t.Errorf("paused only %v", paused)
	}
	if d := regained.num("published") - lost.num("published"); d > 50 {
		t.Errorf("published %v messages while the quorum was lost (%v)", d, paused)
	}
	t.Logf("SIGKILL detected after %v (local profile DetectionTypical %v, DetectionMax %v); publishing paused %v at %v published, until the replacement's handshake (%v published then)",
		detected.Round(time.Millisecond), timings.DetectionTypical, timings.DetectionMax, paused.Round(time.Millisecond), lost["published"], regained["published"])

	// The victim joined and never confirmed the end: the publisher's job
	// did not fully succeed, and it says whom it is about.
	if code := pub.Wait(ctx); code != 1 || !strings.Contains(pub.Stderr.String(), "did not confirm the end: victim") {
		t.Fatalf("syncpub exited %d, want 1 naming the victim: %s", code, pub.Stderr.String())
	}
	for i, s := range subs {
		if code := s.Wait(ctx); code != 0 || !zguideOK(s.Stdout.String(), count) {
			t.Errorf("survivor s%d exited %d, printed %q; stderr %s", i+1, code, s.Stdout.String(), s.Stderr.String())
		}
	}
	if code := replacement.Wait(ctx); code != 0 {
		t.Errorf("replacement exited %d: %s", code, replacement.Stderr.String())
	}
}
