package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// runNATS runs the shape on NATS core or JetStream: nats-server (this
// binary embedding it), then a publisher that connects (and creates the
// stream) and waits, then subscribers, each a separate process (one
// process of Subs subscriptions for an InProc shape). The publisher is
// told to go once every subscriber has subscribed.
func runNATS(ctx context.Context, e *env, sys system, s shape) (r runResult) {
	srv, url, cleanup, err := startNATSServer(ctx, e, sys, s)
	if err != nil {
		return runResult{err: err}
	}
	defer cleanup()
	cpu0, _ := srv.cpuNow()
	topics := strconv.Itoa(max(1, s.Topics))
	pubArgs := []string{"natspub", "--url", url, "--count", strconv.Itoa(s.Count), "--size", strconv.Itoa(s.Size), "--topics", topics}
	if s.latency() {
		pubArgs = append(pubArgs, "--rate", strconv.FormatFloat(s.Rate, 'f', -1, 64))
	}
	if sys.jetStream() {
		pubArgs = append(pubArgs, "--js", sys.storage())
	}
	pub, err := startChild("natspub", e.self, pubArgs, childOptions{stdin: true, pollRSS: rssPollInterval, env: e.profileChildEnv(s, sys, "pub")})
	if err != nil {
		return runResult{err: err}
	}
	all := []*child{pub}
	defer func() { killAll(all...) }()
	if _, err := pub.waitLine(ctx, false, "ready"); err != nil {
		return runResult{err: err}
	}
	procs, perProc := s.Subs, 1
	if s.InProc {
		procs, perProc = 1, s.Subs
	}
	subs := make([]*child, 0, procs)
	var latFiles []string
	for i := 0; i < procs; i++ {
		args := []string{"natssub", "--url", url, "--topics", topics, "--expect", strconv.Itoa(s.Count), "--n", strconv.Itoa(perProc)}
		if sys.jetStream() {
			args = append(args, "--js")
		}
		if s.latency() {
			f := e.scratch(fmt.Sprintf("nats-lat-%d", i))
			latFiles = append(latFiles, f)
			args = append(args, "--latency-out", f)
		}
		c, err := startChild(fmt.Sprintf("natssub %d", i), e.self, args, childOptions{pollRSS: subRSSPollInterval, env: e.profileChildEnv(s, sys, fmt.Sprintf("sub%d", i))})
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
	r.Received, r.Wall, r.err = finish(ctx, subs, pub, ready, e.grace)
	if err := pub.wait(ctx); err != nil && r.err == nil {
		r.err = fmt.Errorf("natspub: %w%s", err, pub.stderrTail())
	}
	var notes []string
	for _, c := range subs {
		if err := c.wait(ctx); err != nil && r.err == nil {
			r.err = fmt.Errorf("%s: %w%s", c.name, err, c.stderrTail())
		}
		notes = append(notes, natsDrops(ctx, c)...)
	}
	r.Note = strings.Join(notes, "; ")
	r.Whole = wholeSpan(all)
	account(&r, pub, subs)
	if cpu1, err := srv.cpuNow(); err == nil {
		r.ServerCPU = cpu1 - cpu0
	}
	r.ServerRSS = srv.peakRSSKiB()
	if s.latency() && r.err == nil {
		r.Lat, r.err = mergeLatencies(latFiles)
	}
	return r
}

// startNATSServer starts nats-server for sys (with JetStream storing in a
// scratch folder for the JetStream systems) and returns it, its client
// URL, and what stops it and removes its storage.
func startNATSServer(ctx context.Context, e *env, sys system, s shape) (*child, string, func(), error) {
	args := []string{"natsserver"}
	var store string
	if sys.jetStream() {
		store = e.scratch("jetstream")
		args = append(args, "--js", "--store", store)
	}
	srv, err := startChild("nats-server", e.self, args, childOptions{stdin: true, pollRSS: rssPollInterval, env: e.profileChildEnv(s, sys, "server")})
	if err != nil {
		return nil, "", nil, err
	}
	cleanup := func() {
		srv.stop()
		if store != "" {
			_ = os.RemoveAll(store)
		}
	}
	l, err := srv.waitLine(ctx, false, "ready ")
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return srv, strings.TrimPrefix(l.text, "ready "), cleanup, nil
}

// natsDrops returns a note for what the subscriber's closing line
// ("dropped N slow-consumer-events N disconnects N consume-errors N
// idled B") reports, if anything is not zero.
func natsDrops(ctx context.Context, c *child) []string {
	l, err := c.waitLine(ctx, false, "dropped ")
	if err != nil {
		return nil
	}
	f := strings.Fields(l.text)
	for i := 1; i < len(f); i += 2 {
		if f[i] != "0" && f[i] != "false" {
			return []string{c.name + ": " + l.text}
		}
	}
	return nil
}
