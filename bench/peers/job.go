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

// env is what every job needs: the binaries and a scratch folder.
type env struct {
	self    string // this binary, re-executed in its modes
	syncpub string
	syncsub string
	tmp     string
	timeout time.Duration // bound on one job
	grace   time.Duration // see afterPublisherGrace
	seq     int           // numbers scratch files
	// profileDir, when set, receives a CPU profile of every process of
	// every job (see profile.go); run numbers their names.
	profileDir string
	run        int
}

// runResult is one run of one shape on one system. Durations are in
// nanoseconds and sizes in KiB in the saved JSON.
type runResult struct {
	Wall    time.Duration `json:"wall_ns"`               // see readyClockDefinition
	Whole   time.Duration `json:"whole_ns"`              // see wholeClockDefinition
	CatchUp time.Duration `json:"catch_up_ns,omitempty"` // late rows: from ready to the backlog counted
	// Received is what each subscriber process counted (one process of
	// Subs subscribers for an InProc shape).
	Received  []int         `json:"received"`
	Lost      int           `json:"lost"`       // messages not counted, all subscribers together
	PubRSS    int64         `json:"pub_rss"`    // publisher peak RSS
	SubRSS    int64         `json:"sub_rss"`    // the largest subscriber process's peak RSS
	ServerRSS int64         `json:"server_rss"` // nats-server peak RSS (NATS only)
	PubCPU    time.Duration `json:"pub_cpu_ns"` // user+sys of the publisher
	SubCPU    time.Duration `json:"sub_cpu_ns"` // user+sys of every subscriber process together
	// ServerCPU is nats-server's user+sys from the publisher's exec to
	// the last client's exit (its own start-up and shutdown left out).
	ServerCPU time.Duration  `json:"server_cpu_ns"`
	Lat       latencySummary `json:"latency"`
	Note      string         `json:"note,omitempty"` // what the system reported dropping, if anything
	Err       string         `json:"error,omitempty"`
	err       error
}

func (r runResult) failed() bool { return r.Err != "" }

// cpu is every process's user+sys together.
func (r runResult) cpu() time.Duration { return r.PubCPU + r.SubCPU + r.ServerCPU }

// readyClockDefinition and wholeClockDefinition are printed with every
// table and in the docs; the jobs implement them.
const readyClockDefinition = `ready clock: from the moment every subscriber is ready (syncmq: syncpub has bound and waits for
its quorum, and every subscriber has started; NATS: nats-server, and the publisher, are connected
and waiting, the JetStream stream exists, and every subscriber has subscribed (or created its
ordered consumer) and flushed) until every subscriber has counted the last message. syncmq's
quorum handshake is inside it; NATS's publisher is told to start at its beginning.`

const wholeClockDefinition = `whole clock: from the exec of the publisher, the first client process, to the exit of the last
client process (publisher and subscribers), as a user timing the commands sees it: start-up,
connections, the JetStream stream and consumers, the handshake, the data, END or the final flush,
and exit. nats-server runs before and after as a standing service: its start-up is outside the
clock, but its CPU from the publisher's exec to the last exit is counted.`

// runShape runs one shape once on one system.
func runShape(ctx context.Context, e *env, sys system, s shape) runResult {
	timeout := e.timeout
	if s.Timeout > 0 {
		timeout = min(timeout, s.Timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r runResult
	switch {
	case s.late() && sys.jetStream():
		r = runNATSLate(ctx, e, sys, s)
	case s.late():
		r = runOursLate(ctx, e, sys, s)
	case sys.nats():
		r = runNATS(ctx, e, sys, s)
	default:
		r = runOurs(ctx, e, sys, s)
	}
	per, procs := s.Backlog+s.Count, s.Subs
	if s.InProc {
		per, procs = s.Subs*per, 1
	}
	for _, n := range r.Received {
		r.Lost += per - n
	}
	if len(r.Received) < procs {
		r.Lost += (procs - len(r.Received)) * per
	}
	if r.err != nil {
		r.Err = r.err.Error()
	}
	return r
}

// readiness waits for each subscriber's ready line and returns when the
// last of them was printed. It reads each subscriber's RSS once ready, so
// that one that runs for less than its polling interval is measured too.
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
	for _, c := range subs {
		c.peakRSSKiB()
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

// wholeSpan is the whole clock over the client processes: from the
// earliest exec to the latest exit. Zero if one has not exited.
func wholeSpan(clients []*child) time.Duration {
	var first, last time.Time
	for _, c := range clients {
		at := c.exitTime()
		if at.IsZero() {
			return 0
		}
		if first.IsZero() || c.started.Before(first) {
			first = c.started
		}
		if at.After(last) {
			last = at
		}
	}
	return last.Sub(first)
}

// account fills r's CPU and RSS from the exited publisher and
// subscribers.
func account(r *runResult, pub *child, subs []*child) {
	r.PubCPU, r.PubRSS = pub.cpuTime(), pub.peakRSSKiB()
	for _, c := range subs {
		r.SubCPU += c.cpuTime()
		r.SubRSS = max(r.SubRSS, c.peakRSSKiB())
	}
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
