package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// A late-joiner run: the publisher publishes the backlog and waits until
// it is retained (untimed), then one subscriber starts from the earliest
// record. It prints "caught up" once it counted the backlog; the bench
// then tells the publisher to go on with the live messages, and the
// subscriber counts to the end. The figures:
//
//   - CatchUp: from the subscriber's ready line to its "caught up" line;
//   - Wall: from ready to its last message, the live ones included;
//   - Whole: the joiner's own command, from its exec to its exit;
//   - CPU of the publisher and nats-server from the joiner's exec on
//     (publishing the backlog left out), the joiner's whole.
//
// The job's --timeout bounds it all: at syncmq's default replay budget
// (16 MiB/s for one host) a backlog of 1,000,000 records of 1 KiB takes
// about a minute to replay.

const lateDefinition = `late joiner: the backlog is published and retained first (untimed); then one subscriber starts
from the earliest record (syncmq: StartAt earliest, replayed over the recovery channel; JetStream:
an ordered consumer, deliver all). catch-up: from its ready line until it counted the backlog; then
the publisher is told to publish the live messages; ready clock: until it counted the last one;
whole clock: the joiner's process, exec to exit. CPU: the joiner's whole, the publisher's and
nats-server's from the joiner's exec on.`

// runOursLate runs a late-joiner shape on syncmq: synclatepub (coord, as
// syncpub with retention for the whole backlog) and one subscriber
// process with StartAt earliest.
func runOursLate(ctx context.Context, e *env, sys system, s shape) (r runResult) {
	ports, err := freePorts(3)
	if err != nil {
		return runResult{err: err}
	}
	ep := func(i int) string { return "tcp://127.0.0.1:" + strconv.Itoa(ports[i]) }
	args := []string{"synclatepub", "--bind", ep(0), "--sync-bind", ep(1), "--recovery-bind", ep(2),
		"--backlog", strconv.Itoa(s.Backlog), "--count", strconv.Itoa(s.Count), "--size", strconv.Itoa(s.payloadBytes())}
	if sys == syncmqDisk {
		dir := e.scratch("journal")
		defer os.RemoveAll(dir)
		args = append(args, "--data-dir", dir)
	}
	if s.ReplayUnlimited {
		args = append(args, "--replay-unlimited")
	}
	pub, err := startChild("synclatepub", e.self, args, childOptions{stdin: true, pollRSS: rssPollInterval, env: e.profileChildEnv(s, sys, "pub")})
	if err != nil {
		return runResult{err: err}
	}
	all := []*child{pub}
	defer func() { killAll(all...) }()
	if _, err := pub.waitLine(ctx, false, "ready"); err != nil {
		return runResult{err: fmt.Errorf("publishing the backlog: %w", err)}
	}
	pubCPU0, _ := pub.cpuNow()
	sub, err := startChild("late joiner", e.self, []string{"syncsubs", "--connect", ep(0), "--sync", ep(1),
		"--start-at", "earliest", "--caught-up", strconv.Itoa(s.Backlog)},
		childOptions{pollRSS: subRSSPollInterval, env: e.profileChildEnv(s, sys, "sub0")})
	if err != nil {
		return runResult{err: err}
	}
	all = append(all, sub)
	return lateRun(ctx, e, pub, pubCPU0, sub, nil, 0)
}

// runNATSLate runs a late-joiner shape on JetStream: the publisher stores
// the backlog with PublishAsync, then one process with an ordered
// consumer from the stream's first message.
func runNATSLate(ctx context.Context, e *env, sys system, s shape) (r runResult) {
	srv, url, cleanup, err := startNATSServer(ctx, e, sys, s)
	if err != nil {
		return runResult{err: err}
	}
	defer cleanup()
	pub, err := startChild("natspub", e.self, []string{"natspub", "--url", url, "--js", sys.storage(),
		"--backlog", strconv.Itoa(s.Backlog), "--count", strconv.Itoa(s.Count), "--size", strconv.Itoa(s.Size)},
		childOptions{stdin: true, pollRSS: rssPollInterval, env: e.profileChildEnv(s, sys, "pub")})
	if err != nil {
		return runResult{err: err}
	}
	defer pub.kill()
	if _, err := pub.waitLine(ctx, false, "ready"); err != nil {
		return runResult{err: fmt.Errorf("publishing the backlog: %w", err)}
	}
	pubCPU0, _ := pub.cpuNow()
	srvCPU0, _ := srv.cpuNow()
	sub, err := startChild("late joiner", e.self, []string{"natssub", "--url", url, "--js",
		"--expect", strconv.Itoa(s.Backlog + s.Count), "--caught-up", strconv.Itoa(s.Backlog)},
		childOptions{pollRSS: subRSSPollInterval, env: e.profileChildEnv(s, sys, "sub0")})
	if err != nil {
		return runResult{err: err}
	}
	defer sub.kill()
	r = lateRun(ctx, e, pub, pubCPU0, sub, srv, srvCPU0)
	r.Note = joinNotes(r.Note, natsDrops(ctx, sub))
	return r
}

// lateRun times a started late joiner: its ready and "caught up" lines,
// then the live phase and the exits.
func lateRun(ctx context.Context, e *env, pub *child, pubCPU0 time.Duration, sub, srv *child, srvCPU0 time.Duration) (r runResult) {
	readyAt, err := readiness(ctx, []*child{sub}, false, "ready")
	if err != nil {
		return runResult{err: err}
	}
	caught, err := sub.waitLine(ctx, false, "caught up")
	if err != nil {
		// Ask it what it counted, for the report.
		_ = sub.cmd.Process.Signal(os.Interrupt)
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interruptGrace)
		defer cancel()
		if l, err2 := sub.waitLine(ictx, false, "Received "); err2 == nil {
			n, _ := parseReceived(l.text)
			return runResult{Received: []int{n}, err: fmt.Errorf("catching up: %w; interrupted, it had counted %d", err, n)}
		}
		return runResult{err: fmt.Errorf("catching up: %w", err)}
	}
	r.CatchUp = caught.at.Sub(readyAt)
	if err := pub.send("go"); err != nil {
		return runResult{err: fmt.Errorf("%s: %w", pub.name, err)}
	}
	r.Received, r.Wall, r.err = finish(ctx, []*child{sub}, pub, readyAt, e.grace)
	if err := pub.wait(ctx); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("%s: %w%s", pub.name, err, pub.stderrTail()))
	}
	_ = sub.wait(ctx)
	if l, err := sub.waitLine(ctx, false, "lost "); err == nil {
		r.Note = sub.name + ": " + l.text
	}
	r.Whole = wholeSpan([]*child{sub})
	account(&r, pub, []*child{sub})
	r.PubCPU -= pubCPU0
	if srv != nil {
		if cpu1, err := srv.cpuNow(); err == nil {
			r.ServerCPU = cpu1 - srvCPU0
		}
		r.ServerRSS = srv.peakRSSKiB()
	}
	return r
}

func joinNotes(note string, more []string) string {
	for _, m := range more {
		if note != "" {
			note += "; "
		}
		note += m
	}
	return note
}
