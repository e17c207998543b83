package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// runNATS runs the shape on NATS core: nats-server (this binary embedding
// it), then a publisher that connects and waits, then subscribers, each a
// separate process. The publisher is told to go once every subscriber has
// subscribed.
func runNATS(ctx context.Context, e *env, s shape) (r runResult) {
	srv, err := startChild("nats-server", e.self, []string{"natsserver"}, childOptions{stdin: true, pollRSS: true})
	if err != nil {
		return runResult{err: err}
	}
	all := []*child{srv}
	defer func() { killAll(all...) }()
	l, err := srv.waitLine(ctx, false, "ready ")
	if err != nil {
		return runResult{err: err}
	}
	url := strings.TrimPrefix(l.text, "ready ")
	topics := strconv.Itoa(max(1, s.topics))
	pubArgs := []string{"natspub", "--url", url, "--count", strconv.Itoa(s.count), "--size", strconv.Itoa(s.size), "--topics", topics}
	if s.latency() {
		pubArgs = append(pubArgs, "--rate", strconv.FormatFloat(s.rate, 'f', -1, 64))
	}
	pub, err := startChild("natspub", e.self, pubArgs, childOptions{stdin: true, pollRSS: true})
	if err != nil {
		return runResult{err: err}
	}
	all = append(all, pub)
	if _, err := pub.waitLine(ctx, false, "ready"); err != nil {
		return runResult{err: err}
	}
	subs := make([]*child, 0, s.subs)
	var latFiles []string
	for i := 0; i < s.subs; i++ {
		args := []string{"natssub", "--url", url, "--topics", topics, "--expect", strconv.Itoa(s.count)}
		if s.latency() {
			f := e.scratch(fmt.Sprintf("nats-lat-%d", i))
			latFiles = append(latFiles, f)
			args = append(args, "--latency-out", f)
		}
		c, err := startChild(fmt.Sprintf("natssub %d", i), e.self, args, childOptions{})
		if err != nil {
			return runResult{err: err}
		}
		subs = append(subs, c)
		all = append(all, c)
	}
	ready, err := readiness(ctx, subs, false, "ready")
	if err != nil {
		return runResult{err: err}
	}
	if err := pub.send("go"); err != nil {
		return runResult{err: fmt.Errorf("natspub: %w", err)}
	}
	r.received, r.wall, r.err = finish(ctx, subs, pub, ready, e.grace)
	if err := pub.wait(ctx); err != nil && r.err == nil {
		r.err = fmt.Errorf("natspub: %w%s", err, pub.stderrTail())
	}
	r.pubRSS = pub.peakRSSKiB()
	var notes []string
	for _, c := range subs {
		if err := c.wait(ctx); err != nil && r.err == nil {
			r.err = fmt.Errorf("%s: %w%s", c.name, err, c.stderrTail())
		}
		if l, err := c.waitLine(ctx, false, "dropped "); err == nil && !strings.HasPrefix(l.text, "dropped 0 slow-consumer-events 0 disconnects 0 ") {
			notes = append(notes, c.name+": "+l.text)
		}
	}
	r.note = strings.Join(notes, "; ")
	r.serverRSS = srv.peakRSSKiB()
	if s.latency() && r.err == nil {
		r.lat, r.err = mergeLatencies(latFiles)
	}
	return r
}
