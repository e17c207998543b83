package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/internal/proctest"
)

// hostsShape is a shape TestRelayHostsFailover runs.
type hostsShape struct {
	perRelay, count, rate int
	subHosts              int    // subscriber hosts, the subscribers spread over them
	output                string // syncsub's --output
	failoverAfter         string
	// drainTimeout is the origin's and the relays' --drain-timeout. In the
	// full shape the subscribers' CPU sets the pace on two cores (200
	// processes at the live pace would need 40-50): relay B's drain
	// after END outlasts the default 30 s.
	drainTimeout string
	timeout      time.Duration
	loss         float64 // percent of the packets to and from the origin dropped (SYNCMQ_RELAY_LOSS)
}

// relayHostsShape is the shape TestRelayHostsFailover runs: by default
// 2 relays x 20 subscribers on one host, 20,000 x 100 B at 10,000/s, each
// subscriber printing every record (--output json);
// SYNCMQ_RELAY_HOSTS=full runs the shape of the acceptance test, 2 x 100
// subscribers on 4 hosts, 200,000 x 100 B at 20,000/s, each printing
// runs of records (--output runs): 200 processes printing 4 million JSON
// lines a second would measure the printing on two cores, not the tier.
// SYNCMQ_RELAY_LOSS=5 drops 5% of the packets between the origin and the
// relays, both ways, at random, in either shape. SYNCMQ_RELAY_LOGS=DIR
// writes the origin's and the relays' whole logs there when the test fails.
func relayHostsShape() hostsShape {
	s := hostsShape{perRelay: 20, count: 20_000, rate: 10_000, subHosts: 1, output: "json", failoverAfter: "1s", drainTimeout: "30s", timeout: 5 * time.Minute}
	if os.Getenv("SYNCMQ_RELAY_HOSTS") == "full" {
		s = hostsShape{perRelay: 100, count: 200_000, rate: 20_000, subHosts: 4, output: "runs", failoverAfter: "3s", drainTimeout: "2m", timeout: 20 * time.Minute}
	}
	if v := os.Getenv("SYNCMQ_RELAY_LOSS"); v != "" {
		s.loss, _ = strconv.ParseFloat(v, 64)
	}
	return s
}

// TestRelayHostsFailover runs origin -> 2 relays -> subscribers on
// "hosts" (network namespaces on a bridge): the origin, a host for each
// relay, and one subscriber host with every subscriber process, half of
// them listing relay A first, half relay B. Mid-stream relay A is killed
// (SIGKILL). Its subscribers move to relay B and repair there; every
// subscriber's output (--output json; runs in the full shape) is fed to the invariant checker: each
// stream of the origin's epoch delivered whole and in order, nothing
// lost, its summary and exit code (0) agreeing with its events. Relay B
// exits 0; the origin exits 1, naming relay A, which never confirmed.
func TestRelayHostsFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 40 subscriber processes for about a minute")
	}
	shape := relayHostsShape()
	perRelay, count := shape.perRelay, shape.count
	hosts := []string{"origin", "ra", "rb"}
	for i := range shape.subHosts {
		hosts = append(hosts, fmt.Sprintf("subs%d", i))
	}
	lab := clustertest.NewLab(t, hosts...)
	if shape.loss > 0 && !lab.Lose("origin", shape.loss) {
		t.Skipf("cannot drop %.0f%% of packets here (htb, pfifo and the bpf classifier)", shape.loss)
	}
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), shape.timeout)
	defer cancel()
	dir := t.TempDir()
	on := func(host, bin string, args ...string) *proctest.Proc {
		argv := append(append(lab.Exec(host)[1:], bin), args...)
		return proctest.Start(t, ctx, "ip", argv...)
	}
	ep := func(host string, port int) string { return fmt.Sprintf("tcp://%s:%d", lab.Addr(host), port) }
	relays := map[string]*proctest.Proc{}
	for _, r := range []string{"ra", "rb"} {
		relays[r] = on(r, syncpub, "relay", "--connect", ep("origin", 5561), "--sync", ep("origin", 5562), "--id", "relay-"+r,
			"--bind", ep(r, 5561), "--sync-bind", ep(r, 5562), "--recovery-bind", ep(r, 5563),
			"--expect", fmt.Sprint(perRelay), "--end-grace", "5s", "--drain-timeout", shape.drainTimeout, "--log-format", "json")
	}
	// The origin keeps its default --repair-window (5 s): relay B holds
	// its BYE until its own subscribers confirmed, its upstream connection
	// idles out meanwhile (no heartbeat after END) and is made again, and
	// a shorter window gave relay B up during that reconnection.
	origin := on("origin", syncpub, "--bind", ep("origin", 5561), "--sync-bind", ep("origin", 5562), "--recovery-bind", ep("origin", 5563),
		"--expect", "2", "--count", fmt.Sprint(count), "--topics", "a,b,c", "--size", "100", "--rate", fmt.Sprint(shape.rate),
		"--drain-timeout", shape.drainTimeout, "--log-level", "warn")
	defer func() {
		if !t.Failed() {
			return
		}
		t.Logf("origin:\n%s\nrelay ra:\n%s\nrelay rb:\n%s", tail(origin.Stderr.String(), 3000),
			tail(relays["ra"].Stderr.String(), 3000), tail(relays["rb"].Stderr.String(), 3000))
		// The whole logs, for a run that failed, where asked.
		if logs := os.Getenv("SYNCMQ_RELAY_LOGS"); logs != "" {
			for name, p := range map[string]*proctest.Proc{"origin": origin, "ra": relays["ra"], "rb": relays["rb"]} {
				if err := os.WriteFile(filepath.Join(logs, name+".log"), []byte(p.Stderr.String()), 0o644); err != nil {
					t.Log(err)
				}
			}
		}
	}()
	// A relay binds once it heard the origin's HELLO; a subscriber that
	// found nothing at its first relay for --failover-after would move on.
	for r, p := range relays {
		clustertest.WaitFor(t, time.Minute, r+" to find the origin", func() bool { return p.Stderr.Count("upstream publisher found") > 0 })
	}

	type subProc struct {
		proc *proctest.Proc
		out  string
	}
	subs := map[string]subProc{}
	var victim string
	for _, order := range [][2]string{{"ra", "rb"}, {"rb", "ra"}} {
		for i := range perRelay {
			id := fmt.Sprintf("%s-%d", order[0], i)
			out := filepath.Join(dir, id+".json")
			cmd := fmt.Sprintf("exec %s --connect %s,%s --sync %s,%s --id %s --output %s --failover-after %s --log-level warn > %s",
				syncsub, ep(order[0], 5561), ep(order[1], 5561), ep(order[0], 5562), ep(order[1], 5562), id, shape.output, shape.failoverAfter, out)
			subs[id] = subProc{on(fmt.Sprintf("subs%d", i%shape.subHosts), "sh", "-c", cmd), out}
			if victim == "" {
				victim = id
			}
		}
	}

	// Mid-stream: once a subscriber of relay A has written a tenth of the
	// stream (its output is buffered: a lower bound).
	for printed(subs[victim].out) < uint64(count/10) {
		select {
		case <-ctx.Done():
			t.Fatal("relay A's subscribers received nothing")
		case <-origin.Done():
			t.Fatalf("the origin ended before the kill: %s", origin.Stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := relays["ra"].Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := origin.Wait(ctx); code != 1 || !strings.Contains(origin.Stderr.String(), "relay-ra") {
		t.Errorf("origin exited %d, want 1 naming relay-ra: %s", code, tail(origin.Stderr.String(), 2000))
	}
	if code := relays["rb"].Wait(ctx); code != 0 {
		t.Errorf("relay rb exited %d", code)
	}

	c := invariant.New(invariant.Options{})
	finals := invariant.Finals{"a": uint64((count + 2) / 3), "b": uint64((count + 1) / 3), "c": uint64(count / 3)}
	movers := 0
	for id, s := range subs {
		code := s.proc.Wait(ctx)
		f, err := os.Open(s.out)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := c.ReadJSON(id, 1, f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		c.JudgeRun(id, 1, sum, code)
		streams := c.Streams(id, 1)
		if len(streams) != len(finals) {
			t.Errorf("%s: %d streams %v, want one incarnation's %d topics", id, len(streams), streams, len(finals))
			continue
		}
		complete := c.Complete(id, 1, streams[0].Publisher, streams[0].Epoch, finals, func(string) bool { return true }, func(string) uint64 { return 1 })
		if code != 0 || sum == nil || sum.Outcome.Name != "ok" || !complete {
			t.Errorf("%s exited %d (complete %v, summary %+v): %s", id, code, complete, sum, tail(s.proc.Stderr.String(), 2000))
		}
		if strings.Contains(s.proc.Stderr.String(), "failing over") {
			movers++
			if !strings.HasPrefix(id, "ra-") {
				t.Errorf("%s failed over, though its relay lived", id)
			}
		} else if strings.HasPrefix(id, "ra-") {
			t.Errorf("%s never failed over", id)
		}
	}
	if err := c.Err(); err != nil {
		t.Error(err)
	}
	t.Logf("%d subscribers on %d relays, %d records each; relay ra killed after %s had written at least %d records; %d subscribers moved to rb",
		len(subs), 2, count, victim, count/10, movers)
	if shape.loss > 0 {
		t.Logf("%.0f%% of the packets to and from the origin dropped: %d", shape.loss, lab.Dropped("origin"))
	}
}

// printed counts the records `syncsub --output json` or `--output runs`
// has written to path so far.
func printed(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var n uint64
	for line := range bytes.Lines(b) {
		switch {
		case bytes.HasPrefix(line, []byte(`{"type":"message"`)):
			n++
		case bytes.HasPrefix(line, []byte(`{"type":"run"`)):
			var r struct{ Count uint64 }
			if json.Unmarshal(line, &r) == nil {
				n += r.Count
			}
		}
	}
	return n
}
