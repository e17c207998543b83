package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/invariant"
	"github.com/syncmq/syncmq/internal/proctest"
)

// relayNode is a `syncpub relay` process and the endpoints it serves.
type relayNode struct {
	proc            *proctest.Proc
	pub, sync, name string
}

// startRelay starts `syncpub relay` of upstream (pub, sync endpoints)
// with a downstream quorum of expect.
func startRelay(t *testing.T, ctx context.Context, syncpub, name, upPub, upSync string, expect int, extra ...string) relayNode {
	t.Helper()
	n := relayNode{pub: clustertest.FreeEndpoint(t), sync: clustertest.FreeEndpoint(t), name: name}
	args := append([]string{"relay", "--connect", upPub, "--sync", upSync, "--id", name,
		"--bind", n.pub, "--sync-bind", n.sync, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", fmt.Sprint(expect), "--log-level", "warn"}, extra...)
	n.proc = proctest.Start(t, ctx, syncpub, args...)
	return n
}

// startOrigin starts the origin publisher: count records over topics.
func startOrigin(t *testing.T, ctx context.Context, syncpub, pub, sync string, expect, count int, extra ...string) *proctest.Proc {
	t.Helper()
	args := append([]string{"--bind", pub, "--sync-bind", sync, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", fmt.Sprint(expect), "--count", fmt.Sprint(count), "--topics", "a,b,c", "--size", "100",
		"--log-level", "warn"}, extra...)
	return proctest.Start(t, ctx, syncpub, args...)
}

// startSub starts `syncsub --output json` on the relays given (one, or
// several to fail over between).
func startSub(t *testing.T, ctx context.Context, syncsub, id string, relays ...relayNode) *proctest.Proc {
	t.Helper()
	var pubs, syncs []string
	for _, r := range relays {
		pubs, syncs = append(pubs, r.pub), append(syncs, r.sync)
	}
	return proctest.Start(t, ctx, syncsub, "--connect", strings.Join(pubs, ","), "--sync", strings.Join(syncs, ","),
		"--id", id, "--output", "json", "--failover-after", "1s", "--log-level", "warn")
}

// checkSub feeds a finished subscriber's JSON output to the invariant
// checker and checks that it got every record of count published
// round-robin over a, b, c, from one publisher incarnation, with nothing
// lost, and that its summary and exit code say so.
func checkSub(t *testing.T, ctx context.Context, id string, p *proctest.Proc, count int) {
	t.Helper()
	code := p.Wait(ctx)
	c := invariant.New(invariant.Options{})
	var sum struct {
		Outcome  string `json:"outcome"`
		ExitCode int    `json:"exit_code"`
		Received uint64 `json:"received"`
		Lost     uint64 `json:"lost"`
	}
	var pub string
	var epoch uint64
	sc := bufio.NewScanner(strings.NewReader(p.Stdout.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Type      string `json:"type"`
			Topic     string `json:"topic"`
			Seq       uint64 `json:"seq"`
			Publisher string `json:"publisher"`
			Epoch     uint64 `json:"epoch"`
			From, To  uint64
			Cause     string `json:"cause"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v in %q", id, err, sc.Text())
		}
		ev := invariant.Event{Sub: id, Run: 1, Publisher: l.Publisher, Epoch: l.Epoch, Topic: l.Topic, Seq: l.Seq, From: l.From, To: l.To, Cause: l.Cause}
		switch l.Type {
		case "message":
			ev.Kind = invariant.Message
			pub, epoch = l.Publisher, l.Epoch
		case "loss":
			ev.Kind = invariant.Loss
		case "end":
			ev.Kind = invariant.End
		case "joined":
			ev.Kind = invariant.Joined
		case "summary":
			if err := json.Unmarshal(sc.Bytes(), &sum); err != nil {
				t.Fatal(err)
			}
			continue
		default:
			continue
		}
		c.Add(ev)
	}
	finals := invariant.Finals{"a": uint64((count + 2) / 3), "b": uint64((count + 1) / 3), "c": uint64(count / 3)}
	complete := c.Complete(id, 1, pub, epoch, finals, func(string) bool { return true }, func(string) uint64 { return 1 })
	c.CheckOutcome(id, 1, complete, invariant.Outcome{Name: sum.Outcome, ExitCode: code})
	if err := c.Err(); err != nil {
		t.Errorf("%s: %v", id, err)
	}
	if code != 0 || sum.Received != uint64(count) || sum.Lost != 0 || !complete {
		t.Errorf("%s exited %d, received %d of %d, lost %d (complete %v): %s", id, code, sum.Received, count, sum.Lost, complete, p.Stderr.String())
	}
}

// TestRelayFanOut: origin -> 2 relays -> 3 subscribers each. Every
// subscriber gets everything and exits 0; each relay exits 0 once its
// subscribers confirmed; the origin, whose --expect counts the relays,
// exits 0 once both relays confirmed.
func TestRelayFanOut(t *testing.T) {
	const count, perRelay = 30_000, 3
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	oPub, oSync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	var relays []relayNode
	subs := map[string]*proctest.Proc{}
	for _, name := range []string{"relay-a", "relay-b"} {
		r := startRelay(t, ctx, syncpub, name, oPub, oSync, perRelay, "--end-grace", "0")
		relays = append(relays, r)
		for i := range perRelay {
			id := fmt.Sprintf("%s-sub-%d", name, i)
			subs[id] = startSub(t, ctx, syncsub, id, r)
		}
	}
	origin := startOrigin(t, ctx, syncpub, oPub, oSync, len(relays), count)
	if code := origin.Wait(ctx); code != 0 {
		t.Fatalf("origin exited %d: %s", code, origin.Stderr.String())
	}
	for _, r := range relays {
		if code := r.proc.Wait(ctx); code != 0 {
			t.Errorf("%s exited %d: %s", r.name, code, r.proc.Stderr.String())
		}
	}
	for id, p := range subs {
		checkSub(t, ctx, id, p, count)
	}
}

// TestRelayTwoLevels: origin -> relay -> relay -> subscriber behaves as
// one hop does.
func TestRelayTwoLevels(t *testing.T) {
	const count = 20_000
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	oPub, oSync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	first := startRelay(t, ctx, syncpub, "relay-1", oPub, oSync, 1, "--end-grace", "0")
	second := startRelay(t, ctx, syncpub, "relay-2", first.pub, first.sync, 1, "--end-grace", "0")
	sub := startSub(t, ctx, syncsub, "leaf", second)
	origin := startOrigin(t, ctx, syncpub, oPub, oSync, 1, count)
	if code := origin.Wait(ctx); code != 0 {
		t.Fatalf("origin exited %d: %s", code, origin.Stderr.String())
	}
	for _, r := range []relayNode{first, second} {
		if code := r.proc.Wait(ctx); code != 0 {
			t.Errorf("%s exited %d: %s", r.name, code, r.proc.Stderr.String())
		}
	}
	checkSub(t, ctx, "leaf", sub, count)
}

// TestRelayFailover: kill -9 of one relay mid-stream. Its subscribers,
// which list both relays, move to the other (within --failover-after,
// below the survivor's --end-grace) and finish with nothing lost and no
// record delivered twice; the surviving relay exits 0; the origin exits
// 1, naming the dead relay, which never confirmed.
func TestRelayFailover(t *testing.T) {
	const count, perRelay = 40_000, 3
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	oPub, oSync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	victim := startRelay(t, ctx, syncpub, "relay-a", oPub, oSync, perRelay)
	survivor := startRelay(t, ctx, syncpub, "relay-b", oPub, oSync, perRelay)
	subs := map[string]*proctest.Proc{}
	var victims []*proctest.Proc
	// 5 s of stream: the kill must come before relay A has everything.
	// At 20,000/s (2 s) a loaded machine saw the victim's buffered output
	// reach a tenth of the stream only after the last record; relay A
	// then died holding END for its grace, and its subscribers reached
	// relay B after B's grace had ended with the same END.
	origin := startOrigin(t, ctx, syncpub, oPub, oSync, 2, count, "--rate", "8000", "--repair-window", "1s")
	// A subscriber fails over from a relay that does not come up, and a
	// relay binds only once it has heard from the origin: start the
	// subscribers once both relays listen.
	waitListening(t, ctx, victim.pub)
	waitListening(t, ctx, survivor.pub)
	for i := range perRelay {
		id := fmt.Sprintf("a-sub-%d", i)
		subs[id] = startSub(t, ctx, syncsub, id, victim, survivor)
		victims = append(victims, subs[id])
		id = fmt.Sprintf("b-sub-%d", i)
		subs[id] = startSub(t, ctx, syncsub, id, survivor, victim)
	}
	// Mid-stream: once a subscriber of the victim has printed part of
	// the stream (its output is buffered, so this is a lower bound).
	for victims[0].Stdout.Count(`"type":"message"`) < count/10 {
		select {
		case <-ctx.Done():
			t.Fatal("the victim's subscribers received nothing")
		case <-origin.Done():
			t.Fatalf("the origin ended before the kill: %s", origin.Stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := victim.proc.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := origin.Wait(ctx); code != 1 || !strings.Contains(origin.Stderr.String(), "relay-a") {
		t.Errorf("origin exited %d, want 1 naming relay-a: %s", code, origin.Stderr.String())
	}
	if code := survivor.proc.Wait(ctx); code != 0 {
		t.Errorf("relay-b exited %d: %s", code, survivor.proc.Stderr.String())
	}
	for id, p := range subs {
		checkSub(t, ctx, id, p, count)
	}
	for i, p := range victims {
		if !strings.Contains(p.Stderr.String(), "failing over") {
			t.Errorf("a-sub-%d never failed over: %s", i, p.Stderr.String())
		}
	}
}

// waitListening polls until something accepts TCP connections at the
// tcp:// endpoint ep.
func waitListening(t *testing.T, ctx context.Context, ep string) {
	t.Helper()
	addr := strings.TrimPrefix(ep, "tcp://")
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nothing listens at %s", ep)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRelayHosts runs the fan-out on "hosts" (network namespaces on a
// bridge): an origin, two relay hosts, and a subscriber host behind each
// relay with 3 subscribers, with 5% of the packets the origin sends
// dropped (netem, where the kernel has it). TCP retransmits them: every
// subscriber gets everything and exits 0, and so do the relays and the
// origin.
func TestRelayHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 20 s")
	}
	const count, perRelay = 20_000, 3
	lab := clustertest.NewLab(t, "origin", "ra", "rb", "sa", "sb")
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.Command("ip", "netns", "exec", lab.NS("origin"), "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "5%").CombinedOutput(); err != nil {
		t.Logf("netem is not available here (%v: %s): running without packet loss", err, strings.TrimSpace(string(out)))
	}
	on := func(host, bin string, args ...string) *proctest.Proc {
		argv := append(append(lab.Exec(host)[1:], bin), args...)
		return proctest.Start(t, ctx, "ip", argv...)
	}
	ep := func(host string, port int) string { return fmt.Sprintf("tcp://%s:%d", lab.Addr(host), port) }
	var relays []*proctest.Proc
	subs := map[string]*proctest.Proc{}
	for _, r := range []struct{ relay, subHost string }{{"ra", "sa"}, {"rb", "sb"}} {
		relays = append(relays, on(r.relay, syncpub, "relay", "--connect", ep("origin", 5561), "--sync", ep("origin", 5562), "--id", r.relay,
			"--bind", ep(r.relay, 5561), "--sync-bind", ep(r.relay, 5562), "--recovery-bind", ep(r.relay, 5563),
			"--expect", fmt.Sprint(perRelay), "--end-grace", "0", "--log-level", "warn"))
		for i := range perRelay {
			id := fmt.Sprintf("%s-%d", r.subHost, i)
			subs[id] = on(r.subHost, syncsub, "--connect", ep(r.relay, 5561), "--sync", ep(r.relay, 5562), "--id", id,
				"--output", "json", "--log-level", "warn")
		}
	}
	origin := on("origin", syncpub, "--bind", ep("origin", 5561), "--sync-bind", ep("origin", 5562), "--recovery-bind", ep("origin", 5563),
		"--expect", "2", "--count", fmt.Sprint(count), "--topics", "a,b,c", "--size", "100", "--rate", "5000", "--log-level", "warn")
	if code := origin.Wait(ctx); code != 0 {
		t.Fatalf("origin exited %d: %s", code, origin.Stderr.String())
	}
	for i, r := range relays {
		if code := r.Wait(ctx); code != 0 {
			t.Errorf("relay %d exited %d: %s", i, code, r.Stderr.String())
		}
	}
	for id, p := range subs {
		checkSub(t, ctx, id, p, count)
	}
}

// TestRelayCheckConfig: --check-config prints the relay's settings and
// exits 0; a bad upstream or downstream setting is one line naming the
// flag, exit 2, as a run would.
func TestRelayCheckConfig(t *testing.T) {
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ok := proctest.Start(t, ctx, syncpub, "relay", "--connect", "tcp://127.0.0.1:5561", "--expect", "3", "--check-config")
	if code := ok.Wait(ctx); code != 0 || !strings.Contains(ok.Stdout.String(), "configuration OK") || !strings.Contains(ok.Stdout.String(), "end-grace") ||
		!strings.Contains(ok.Stdout.String(), "max-conns-per-ip") || !strings.Contains(ok.Stdout.String(), "slow-policy") {
		t.Fatalf("exit %d: %s %s", code, ok.Stdout.String(), ok.Stderr.String())
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--connect", "tcp://127.0.0.1:0"}, "connect"},
		{[]string{"--drain-timeout", "1ms"}, "drain-timeout"},
		{[]string{"--slow-policy", "drop"}, "slow-policy"},
		{[]string{"--queue-bytes", "1"}, "queue-bytes"},
		{[]string{"--tls-cert", "/nonexistent.crt"}, "tls"},
	} {
		for _, check := range []bool{true, false} {
			args := append([]string{"relay", "--bind", clustertest.FreeEndpoint(t)}, tt.args...)
			if check {
				args = append(args, "--check-config")
			}
			p := proctest.Start(t, ctx, syncpub, args...)
			if code := p.Wait(ctx); code != 2 || !strings.Contains(p.Stderr.String(), tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", args, code, p.Stderr.String(), tt.want)
			}
		}
	}
}

// TestRelayServesMetrics: a relay with --metrics-addr exports its own
// syncmq_relay_* beside its downstream publisher's and its upstream
// subscriber's metrics, while it runs with limits of its own
// (--max-conns-per-ip, --slow-policy) given as syncpub's are.
func TestRelayServesMetrics(t *testing.T) {
	const count = 6000
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	oPub, oSync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	addr := fmt.Sprintf("127.0.0.1:%d", clustertest.FreePort(t))
	r := startRelay(t, ctx, syncpub, "relay-m", oPub, oSync, 1, "--end-grace", "0", "--metrics-addr", addr,
		"--max-conns-per-ip", "8", "--max-handshakes-per-ip", "4", "--slow-policy", "catch-up")
	sub := startSub(t, ctx, syncsub, "sub-m", r)
	origin := startOrigin(t, ctx, syncpub, oPub, oSync, 1, count, "--rate", "2000")
	clustertest.WaitFor(t, time.Minute, "the relay's metrics to show both sides and the forwarding", func() bool {
		code, _ := httpGet(addr, "/readyz")
		return code == 200 && metricValue(addr, "syncmq_relay_forwarded_messages_total") >= 1000 &&
			metricValue(addr, "syncmq_publisher_messages_total") >= 1000 && metricValue(addr, "syncmq_subscriber_messages_total") >= 1000 &&
			metricValue(addr, "syncmq_relay_upstream_lost_messages_total") == 0
	})
	if code := origin.Wait(ctx); code != 0 {
		t.Fatalf("origin exited %d: %s", code, origin.Stderr.String())
	}
	if code := r.proc.Wait(ctx); code != 0 {
		t.Errorf("relay exited %d: %s", code, r.proc.Stderr.String())
	}
	checkSub(t, ctx, "sub-m", sub, count)
}
