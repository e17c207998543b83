package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// system names one side of the comparison.
type system string

const (
	syncmq system = "syncmq"
	natsrv system = "nats"
)

// env is what every job needs: the binaries and a scratch folder.
type env struct {
	self    string // this binary, re-executed in its modes
	syncpub string
	syncsub string
	tmp     string
	timeout time.Duration // bound on one job
	grace   time.Duration // see afterPublisherGrace
	seq     int           // numbers scratch files
}

// runResult is one run of one shape on one system.
type runResult struct {
	wall      time.Duration // see wallTimeDefinition
	received  []int         // per subscriber
	lost      int           // messages not counted, all subscribers together
	pubRSS    int64         // publisher peak RSS, KiB
	serverRSS int64         // nats-server peak RSS, KiB (NATS only)
	lat       latencySummary
	note      string // what the system reported dropping, if anything
	err       error
}

// wallTimeDefinition is printed with every table and in the docs; runOurs
// and runNATS implement it.
const wallTimeDefinition = `wall time: from the moment every subscriber is ready (syncmq: syncpub has bound and waits for
its quorum, and every syncsub has started; NATS: nats-server, and the publisher, are connected and
waiting, and every subscriber has subscribed and flushed) until every subscriber has counted the
last message (printed its count). Process start-up is outside it for both; syncmq's quorum
handshake is inside it; NATS's publisher is told to start at its beginning.`

// runShape runs one shape once on one system.
func runShape(ctx context.Context, e *env, sys system, s shape) runResult {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	var r runResult
	if sys == syncmq {
		r = runOurs(ctx, e, s)
	} else {
		r = runNATS(ctx, e, s)
	}
	for _, n := range r.received {
		r.lost += s.count - n
	}
	if len(r.received) < s.subs {
		r.lost += (s.subs - len(r.received)) * s.count
	}
	return r
}

// readiness waits for each subscriber's ready line and returns when the
// last of them was printed.
func readiness(ctx context.Context, subs []*child, fromErr bool, substr string) (time.Time, error) {
	var last time.Time
	for _, c := range subs {
		l, err := c.waitLine(ctx, fromErr, substr)
		if err != nil {
			return last, err
		}
		if l.at.After(last) {
			last = l.at
		}
	}
	return last, nil
}

// afterPublisherGrace is how long subscribers may take to finish once
// the publisher exited (env.grace). Both publishers exit only when their data has left
// them (syncpub: subscribers took everything or its drain timeout passed;
// NATS: the server answered the final flush), so a subscriber still
// running after this waits for something that will not come.
const afterPublisherGrace = time.Minute

// interruptGrace bounds the wait for an interrupted subscriber's count.
const interruptGrace = 10 * time.Second

// finish waits for every subscriber's "Received N updates" line and
// returns the counts and the wall time from ready to the last line. A
// subscriber that has not finished grace after pub exited
// (or when ctx ends) is interrupted, which makes it print its count, and
// the run fails.
func finish(ctx context.Context, subs []*child, pub *child, ready time.Time, grace time.Duration) ([]int, time.Duration, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-pub.done:
		case <-stop:
			return
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel(fmt.Errorf("not finished %v after the publisher exited", grace))
		case <-stop:
		}
	}()
	got := make([]int, len(subs))
	var end time.Time
	var errs []error
	for i, c := range subs {
		l, err := c.waitLine(wctx, false, "Received ")
		if err != nil && wctx.Err() != nil {
			// Ask it for its count: syncsub, like our modes, prints it on SIGINT.
			_ = c.cmd.Process.Signal(os.Interrupt)
			ictx, icancel := context.WithTimeout(context.WithoutCancel(ctx), interruptGrace)
			l2, err2 := c.waitLine(ictx, false, "Received ")
			icancel()
			if err2 == nil {
				got[i], _ = parseReceived(l2.text)
				err = fmt.Errorf("%s %v; interrupted, it had counted %d%s", c.name, context.Cause(wctx), got[i], c.stderrTail())
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got[i], err = parseReceived(l.text); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
		if l.at.After(end) {
			end = l.at
		}
	}
	return got, end.Sub(ready), errors.Join(errs...)
}

func parseReceived(s string) (int, error) {
	_, rest, ok := strings.Cut(s, "Received ")
	f := strings.Fields(rest)
	if !ok || len(f) < 1 {
		return 0, fmt.Errorf("cannot read a count in %q", s)
	}
	return strconv.Atoi(f[0])
}

// freePorts returns n distinct free loopback ports, found by binding
// 127.0.0.1:0 (all at once, so they differ) and releasing them.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// scratch returns a fresh path in the scratch folder.
func (e *env) scratch(name string) string {
	e.seq++
	return filepath.Join(e.tmp, fmt.Sprintf("%04d-%s", e.seq, name))
}

// mergeLatencies reads the subscribers' sample files into one summary.
func mergeLatencies(files []string) (latencySummary, error) {
	var all []int64
	for _, f := range files {
		var err error
		if all, err = readLatencies(all, f); err != nil {
			return latencySummary{}, err
		}
	}
	return summarize(all), nil
}
