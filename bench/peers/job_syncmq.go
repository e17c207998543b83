package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// runOurs runs the shape as syncpub (with --data-dir for syncmq-disk),
// then syncsubs (or latency subscribers, or one process of
// coord.Subscribers for an InProc shape) as separate processes on
// loopback.
func runOurs(ctx context.Context, e *env, sys system, s shape) (r runResult) {
	ports, err := freePorts(3)
	if err != nil {
		return runResult{err: err}
	}
	ep := func(i int) string { return "tcp://127.0.0.1:" + strconv.Itoa(ports[i]) }
	args := []string{"--bind", ep(0), "--sync-bind", ep(1), "--recovery-bind", ep(2),
		"--expect", strconv.Itoa(s.Subs), "--count", strconv.Itoa(s.Count),
		"--topics", strings.Join(s.topicNames(), ","), "--log-level", "info"}
	if s.Size == 0 {
		args = append(args, "--payload", zguidePayload)
	} else {
		args = append(args, "--size", strconv.Itoa(s.Size))
	}
	if s.latency() {
		args = append(args, "--rate", strconv.FormatFloat(s.Rate, 'f', -1, 64))
	}
	if s.Subs > 256 {
		// Every subscriber is on one host: raise the per-address bounds
		// (256 connections and 256 ids by default), as an operator would.
		n := strconv.Itoa(s.Subs + 16)
		args = append(args, "--max-conns-per-ip", n, "--max-subscribers-per-ip", n)
	}
	if sys == syncmqDisk {
		dir := e.scratch("journal")
		defer os.RemoveAll(dir)
		args = append(args, "--data-dir", dir)
	}
	pub, err := startChild("syncpub", e.syncpub, args, childOptions{pollRSS: rssPollInterval, env: e.profileChildEnv(s, sys, "pub")})
	if err != nil {
		return runResult{err: err}
	}
	all := []*child{pub}
	defer func() { killAll(all...) }()
	if _, err := pub.waitLine(ctx, true, "waiting for subscribers"); err != nil {
		return runResult{err: err}
	}
	subs := make([]*child, 0, s.Subs)
	var latFiles []string
	procs := s.Subs
	if s.InProc {
		procs = 1
	}
	for i := 0; i < procs; i++ {
		name := fmt.Sprintf("syncsub %d", i)
		id := fmt.Sprintf("bench-%d", i)
		o := childOptions{pollRSS: subRSSPollInterval, env: e.profileChildEnv(s, sys, fmt.Sprintf("sub%d", i))}
		var c *child
		switch {
		case s.InProc:
			c, err = startChild(name, e.self, []string{"syncsubs", "--connect", ep(0), "--sync", ep(1),
				"--n", strconv.Itoa(s.Subs)}, o)
		case s.latency():
			f := e.scratch(fmt.Sprintf("syncmq-lat-%d", i))
			latFiles = append(latFiles, f)
			c, err = startChild(name, e.self, []string{"synclatsub", "--connect", ep(0), "--sync", ep(1),
				"--id", id, "--expect", strconv.Itoa(s.Count), "--latency-out", f}, o)
		default:
			c, err = startChild(name, e.syncsub, []string{"--connect", ep(0), "--sync", ep(1),
				"--output", "count", "--id", id, "--log-level", "info"}, o)
		}
		if err != nil {
			return runResult{err: err}
		}
		subs = append(subs, c)
		all = append(all, c)
	}
	var ready time.Time
	if s.latency() || s.InProc {
		ready, err = readiness(ctx, subs, false, "ready")
	} else {
		ready, err = readiness(ctx, subs, true, "subscriber started")
	}
	if err != nil {
		return runResult{err: err}
	}
	r.Received, r.Wall, r.err = finish(ctx, subs, pub, ready, e.grace)
	if err := pub.wait(ctx); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("syncpub: %w%s", err, pub.stderrTail()))
	} else if r.err != nil {
		r.err = fmt.Errorf("%w\nsyncpub%s", r.err, pub.stderrTail())
	}
	var notes []string
	for i, c := range subs {
		// syncsub exits 1 when it counted a loss; the count says how much,
		// its log says why.
		_ = c.wait(ctx)
		if causes := lossCauses(c); causes != "" && i < len(r.Received) {
			notes = append(notes, fmt.Sprintf("%s counted %d, lost %s", c.name, r.Received[i], causes))
		}
		if s.InProc || s.latency() { // our modes print "lost N" when they saw a loss
			if l, err := c.waitLine(ctx, false, "lost "); err == nil {
				notes = append(notes, c.name+": "+l.text)
			}
		}
	}
	r.Note = strings.Join(notes, "; ")
	r.Whole = wholeSpan(all)
	account(&r, pub, subs)
	if s.latency() && r.err == nil {
		r.Lat, r.err = mergeLatencies(latFiles)
	}
	return r
}

// lossCauseRE finds the cause in syncsub's "messages lost" log line.
var lossCauseRE = regexp.MustCompile(`"from": (\d+), "to": (\d+), "cause": "([^"]+)"`)

// lossCauses sums the subscriber's logged losses by cause, e.g.
// "1200 (repair-timeout)"; empty when it logged none.
func lossCauses(c *child) string {
	byCause := map[string]uint64{}
	var order []string
	for _, l := range c.stderrLines("messages lost") {
		m := lossCauseRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		from, _ := strconv.ParseUint(m[1], 10, 64)
		to, _ := strconv.ParseUint(m[2], 10, 64)
		if _, ok := byCause[m[3]]; !ok {
			order = append(order, m[3])
		}
		byCause[m[3]] += to - from + 1
	}
	var parts []string
	for _, cause := range order {
		parts = append(parts, fmt.Sprintf("%d (%s)", byCause[cause], cause))
	}
	return strings.Join(parts, ", ")
}
