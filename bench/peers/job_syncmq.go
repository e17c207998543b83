package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// runOurs runs the shape as syncpub, then syncsubs (or latency
// subscribers) as separate processes on loopback.
func runOurs(ctx context.Context, e *env, s shape) (r runResult) {
	ports, err := freePorts(3)
	if err != nil {
		return runResult{err: err}
	}
	ep := func(i int) string { return "tcp://127.0.0.1:" + strconv.Itoa(ports[i]) }
	args := []string{"--bind", ep(0), "--sync-bind", ep(1), "--recovery-bind", ep(2),
		"--expect", strconv.Itoa(s.subs), "--count", strconv.Itoa(s.count),
		"--topics", strings.Join(s.topicNames(), ","), "--log-level", "info"}
	if s.size == 0 {
		args = append(args, "--payload", zguidePayload)
	} else {
		args = append(args, "--size", strconv.Itoa(s.size))
	}
	if s.latency() {
		args = append(args, "--rate", strconv.FormatFloat(s.rate, 'f', -1, 64))
	}
	pub, err := startChild("syncpub", e.syncpub, args, childOptions{pollRSS: true})
	if err != nil {
		return runResult{err: err}
	}
	all := []*child{pub}
	defer func() { killAll(all...) }()
	if _, err := pub.waitLine(ctx, true, "waiting for subscribers"); err != nil {
		return runResult{err: err}
	}
	subs := make([]*child, 0, s.subs)
	var latFiles []string
	for i := 0; i < s.subs; i++ {
		name := fmt.Sprintf("syncsub %d", i)
		id := fmt.Sprintf("bench-%d", i)
		var c *child
		if s.latency() {
			f := e.scratch(fmt.Sprintf("syncmq-lat-%d", i))
			latFiles = append(latFiles, f)
			c, err = startChild(name, e.self, []string{"synclatsub", "--connect", ep(0), "--sync", ep(1),
				"--id", id, "--expect", strconv.Itoa(s.count), "--latency-out", f}, childOptions{})
		} else {
			c, err = startChild(name, e.syncsub, []string{"--connect", ep(0), "--sync", ep(1),
				"--output", "count", "--id", id, "--log-level", "info"}, childOptions{})
		}
		if err != nil {
			return runResult{err: err}
		}
		subs = append(subs, c)
		all = append(all, c)
	}
	var ready time.Time
	if s.latency() {
		ready, err = readiness(ctx, subs, false, "ready")
	} else {
		ready, err = readiness(ctx, subs, true, "subscriber started")
	}
	if err != nil {
		return runResult{err: err}
	}
	r.received, r.wall, r.err = finish(ctx, subs, pub, ready, e.grace)
	if err := pub.wait(ctx); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("syncpub: %w%s", err, pub.stderrTail()))
	} else if r.err != nil {
		r.err = fmt.Errorf("%w\nsyncpub%s", r.err, pub.stderrTail())
	}
	r.pubRSS = pub.peakRSSKiB()
	var notes []string
	for i, c := range subs {
		// syncsub exits 1 when it counted a loss; the count says how much,
		// its log says why.
		_ = c.wait(ctx)
		if causes := lossCauses(c); causes != "" && i < len(r.received) {
			notes = append(notes, fmt.Sprintf("%s counted %d, lost %s", c.name, r.received[i], causes))
		}
	}
	r.note = strings.Join(notes, "; ")
	if s.latency() && r.err == nil {
		r.lat, r.err = mergeLatencies(latFiles)
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
