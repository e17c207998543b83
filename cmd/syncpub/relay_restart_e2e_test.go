package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/internal/proctest"
)

// TestRelayFollowsOriginRestart: the origin is killed (SIGKILL) mid-stream
// and started again on the same endpoints, a new epoch. The relay serves
// the new epoch on its own endpoints; its subscriber sees the restart as
// it would directly: the old epoch's unknown tail, then the new epoch
// whole, with its END. The new origin exits 0 (the relay confirmed it);
// the relay and the subscriber exit 1, because what the first epoch
// published after its last record is unknown.
func TestRelayFollowsOriginRestart(t *testing.T) {
	const count = 10_000
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	oPub, oSync, oRec := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	relay := startRelay(t, ctx, syncpub, "relay-1", oPub, oSync, 1, "--end-grace", "0")
	sub := startSub(t, ctx, syncsub, "leaf", relay)
	origin := func(rate int) *proctest.Proc {
		return proctest.Start(t, ctx, syncpub, "--bind", oPub, "--sync-bind", oSync, "--recovery-bind", oRec,
			"--expect", "1", "--count", fmt.Sprint(count), "--topics", "a,b,c", "--size", "100", "--rate", fmt.Sprint(rate),
			"--log-level", "warn")
	}
	first := origin(2000) // five seconds: killed well before its end
	for sub.Stdout.Count(`"type":"message"`) < 100 {
		select {
		case <-ctx.Done():
			t.Fatal("the subscriber received nothing from the first epoch")
		case <-first.Done():
			t.Fatalf("the first origin ended before the kill: %s", first.Stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := first.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait(ctx)
	second := origin(0)
	if code := second.Wait(ctx); code != 0 {
		t.Fatalf("the second origin exited %d: %s", code, second.Stderr.String())
	}
	if code := relay.proc.Wait(ctx); code != 1 || !strings.Contains(relay.proc.Stderr.String(), "restarted") {
		t.Errorf("relay exited %d, want 1 reporting the restart: %s", code, relay.proc.Stderr.String())
	}
	code := sub.Wait(ctx)
	c := invariant.New(invariant.Options{})
	sum, err := c.ReadJSON("leaf", 1, strings.NewReader(sub.Stdout.String()))
	if err != nil {
		t.Fatal(err)
	}
	c.JudgeRun("leaf", 1, sum, code)
	epochs := map[uint64]bool{}
	for _, s := range c.Streams("leaf", 1) {
		epochs[s.Epoch] = true
	}
	if len(epochs) != 2 {
		t.Fatalf("streams of %d epochs, want 2: %v", len(epochs), c.Streams("leaf", 1))
	}
	var newest uint64
	var pub string
	for _, s := range c.Streams("leaf", 1) {
		if s.Epoch > newest {
			newest, pub = s.Epoch, s.Publisher
		}
	}
	finals := invariant.Finals{"a": uint64((count + 2) / 3), "b": uint64((count + 1) / 3), "c": uint64(count / 3)}
	if !c.Complete("leaf", 1, pub, newest, finals, func(string) bool { return true }, func(string) uint64 { return 1 }) {
		t.Errorf("the second epoch is not complete at the subscriber")
	}
	if err := c.Err(); err != nil {
		t.Error(err)
	}
	if code != 1 || sum == nil || sum.Outcome.Name != "lost" || sum.Counts.UnknownTails == 0 || !strings.Contains(sub.Stdout.String(), `"type":"publisher-restart"`) {
		t.Errorf("subscriber exited %d with %+v, want 1 (lost: the first epoch's unknown tail) after a publisher-restart", code, sum)
	}
}
