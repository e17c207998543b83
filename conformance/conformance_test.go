package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// TestSubscriberAgainstSyncpub runs the reference pyzmq subscriber against
// syncpub: handshake, batches, records kept from before the ACK, gap
// repair over the recovery channel (one subscriber pretends to lose every
// fifth message), END, BYE, and nothing after END.
func TestSubscriberAgainstSyncpub(t *testing.T) {
	needPyzmq(t)
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pub, sync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	const n = 20_000
	p := start(t, ctx, syncpub, "--bind", pub, "--sync-bind", sync, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "2", "--count", fmt.Sprint(n), "--max-batch-records", "10", "--heartbeat", "200ms", "--log-level", "warn")
	lossy := start(t, ctx, python, script("subscriber.py"), "--pub", pub, "--sync", sync, "--id", "py-lossy", "--drop", "5", "--quiet-after-end", "1")
	clean := start(t, ctx, python, script("subscriber.py"), "--pub", pub, "--sync", sync, "--id", "py-clean", "--topics", "up")
	wait(t, ctx, "lossy subscriber", lossy, 0)
	wait(t, ctx, "clean subscriber", clean, 0)
	wait(t, ctx, "syncpub", p, 0)
	for name, s := range map[string]*proctest.Proc{"lossy": lossy, "clean": clean} {
		lines := strings.Split(strings.TrimSpace(s.Stdout.String()), "\n")
		if len(lines) != n {
			t.Fatalf("%s subscriber printed %d records, want %d", name, len(lines), n)
		}
		for i, l := range lines {
			if want := fmt.Sprintf("update %d b'Rhubarb'", i+1); l != want {
				t.Fatalf("%s subscriber line %d is %q, want %q", name, i+1, l, want)
			}
		}
	}
	if r := repaired(t, lossy.Stderr.String()); r == 0 {
		t.Fatalf("the lossy subscriber repaired nothing: %s", lossy.Stderr.String())
	}
}

// TestMultiSubscriberAgainstSyncpub runs the reference pyzmq subscriber
// with --multi against syncpub publishing three topics round-robin: its
// READY asks for MULTI (section 1.5), so batches of several topics reach
// it as MULTI messages, which it decodes from the spec alone. One
// subscriber pretends to lose every seventh data message and repairs;
// both get every record of every topic in order, and the clean one in
// the publisher's order across topics.
func TestMultiSubscriberAgainstSyncpub(t *testing.T) {
	needPyzmq(t)
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pub, sync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	const n = 30_000
	topics := []string{"alpha", "beta", "gamma"}
	p := start(t, ctx, syncpub, "--bind", pub, "--sync-bind", sync, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "2", "--count", fmt.Sprint(n), "--topics", strings.Join(topics, ","), "--log-level", "warn",
		"--max-batch-records", "30") // messages enough that every 7th is some, however busy the machine
	lossy := start(t, ctx, python, script("subscriber.py"), "--pub", pub, "--sync", sync, "--id", "py-lossy", "--multi", "--drop", "7")
	clean := start(t, ctx, python, script("subscriber.py"), "--pub", pub, "--sync", sync, "--id", "py-clean", "--multi")
	wait(t, ctx, "lossy subscriber", lossy, 0)
	wait(t, ctx, "clean subscriber", clean, 0)
	wait(t, ctx, "syncpub", p, 0)
	for name, s := range map[string]*proctest.Proc{"lossy": lossy, "clean": clean} {
		lines := strings.Split(strings.TrimSpace(s.Stdout.String()), "\n")
		if len(lines) != n {
			t.Fatalf("%s subscriber printed %d records, want %d", name, len(lines), n)
		}
		next := map[string]int{}
		for i, l := range lines {
			var topic, payload string
			var seq int
			if _, err := fmt.Sscanf(l, "%s %d %s", &topic, &seq, &payload); err != nil {
				t.Fatalf("%s subscriber line %d: %q: %v", name, i+1, l, err)
			}
			if next[topic]++; seq != next[topic] {
				t.Fatalf("%s subscriber line %d is %q: want %s sequence %d", name, i+1, l, topic, next[topic])
			}
			if name == "clean" && topic != topics[i%len(topics)] {
				t.Fatalf("clean subscriber line %d is %q: want topic %s, the publisher's order", i+1, l, topics[i%len(topics)])
			}
		}
		m := regexp.MustCompile(`multi (\d+)`).FindStringSubmatch(s.Stderr.String())
		if m == nil || m[1] == "0" {
			t.Fatalf("%s subscriber received no MULTI: %s", name, s.Stderr.String())
		}
		t.Logf("%s subscriber: %s", name, strings.TrimSpace(s.Stderr.String()))
	}
	if r := repaired(t, lossy.Stderr.String()); r == 0 {
		t.Fatalf("the lossy subscriber repaired nothing: %s", lossy.Stderr.String())
	}
}

func repaired(t *testing.T, stderr string) int {
	m := regexp.MustCompile(`received (\d+), repaired (\d+), lost 0`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary without losses in %q", stderr)
	}
	r, _ := strconv.Atoi(m[2])
	return r
}

// TestPublisherServesSyncsub runs syncsub against the reference pyzmq
// publisher, which keeps every fifth batch off the live stream: syncsub
// must repair them over the recovery channel, with FETCH_MANY or, against
// a publisher that answers it as 1.0 did, with FETCH. Both subscribers
// say BYE, which is what lets the publisher exit 0.
func TestPublisherServesSyncsub(t *testing.T) {
	needPyzmq(t)
	_, syncsub := proctest.Binaries(t)
	for _, mode := range []string{"fetch-many", "fetch-only"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			pub, sync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
			args := []string{script("publisher.py"), "--bind", pub, "--sync", sync, "--recovery", clustertest.FreeEndpoint(t),
				"--expect", "2", "--count", "20000", "--skip", "5", "--topics", "a", "b"}
			if mode == "fetch-only" {
				args = append(args, "--fetch-only")
			}
			p := start(t, ctx, python, args...)
			var subs []*proctest.Proc
			for i := range 2 {
				subs = append(subs, start(t, ctx, syncsub, "--connect", pub, "--sync", sync, "--output", "count",
					"--id", fmt.Sprint("go-", i), "--log-level", "warn"))
			}
			for i, s := range subs {
				wait(t, ctx, fmt.Sprint("syncsub ", i), s, 0)
				out := s.Stdout.String()
				m := regexp.MustCompile(`outcome ok: lost 0, recovered (\d+)`).FindStringSubmatch(out)
				if !strings.Contains(out, "Received 20000 updates") || m == nil || m[1] == "0" {
					t.Fatalf("syncsub %d: %s", i, out)
				}
			}
			wait(t, ctx, "publisher.py", p, 0)
			if !strings.Contains(p.Stderr.String(), "2 of 2 said bye") {
				t.Fatalf("publisher.py: %s", p.Stderr.String())
			}
		})
	}
}

// TestRepeatedHellosChangeNothing: a publisher that repeats its HELLO
// while publishing (the protocol allows it) makes syncsub neither send
// READY again nor fetch what is still in flight: nothing is repaired and
// nothing arrives twice.
func TestRepeatedHellosChangeNothing(t *testing.T) {
	needPyzmq(t)
	_, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pub, sync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	p := start(t, ctx, python, script("publisher.py"), "--bind", pub, "--sync", sync, "--recovery", clustertest.FreeEndpoint(t),
		"--expect", "1", "--count", "20000", "--hello-every", "20")
	s := start(t, ctx, syncsub, "--connect", pub, "--sync", sync, "--output", "json", "--id", "go", "--log-level", "warn")
	wait(t, ctx, "syncsub", s, 0)
	wait(t, ctx, "publisher.py", p, 0)
	var sum struct {
		Received, Recovered, Duplicates, Gaps uint64
	}
	lines := strings.Split(strings.TrimSpace(s.Stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("summary: %v", err)
	}
	if sum.Received != 20000 || sum.Recovered != 0 || sum.Duplicates != 0 || sum.Gaps != 0 {
		t.Fatalf("after repeated HELLOs: %+v, want 20000 received, nothing recovered, duplicated or missing", sum)
	}
	if !strings.Contains(p.Stderr.String(), "0 requests") {
		t.Fatalf("publisher.py was asked for repairs: %s", p.Stderr.String())
	}
}

// TestNegative provokes every error code syncpub answers with libzmq
// clients: negative.py lists them one by one.
func TestNegative(t *testing.T) {
	needPyzmq(t)
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pub, sync, rec := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	p := start(t, ctx, syncpub, "--bind", pub, "--sync-bind", sync, "--recovery-bind", rec, "--expect", "2", "--max-subscribers", "2",
		"--count", "100000", "--rate", "200", "--history-messages", "100", "--log-level", "error")
	neg := start(t, ctx, python, script("negative.py"), "--pub", pub, "--sync", sync, "--recovery", rec)
	wait(t, ctx, "negative.py", neg, 0)
	if n := neg.Stdout.Count("ok "); n < 30 {
		t.Fatalf("negative.py passed only %d checks:\n%s", n, neg.Stdout.String())
	}
	t.Log(neg.Stdout.String())
	_ = p.Cmd.Process.Kill()
}

// TestMultiNeedsOnePrefixCommonToAllTopics (protocol 1.1 erratum 1):
// MULTI goes to a connection subscribed to one prefix that every topic
// the publisher may publish starts with (section 1.5), since a MULTI's
// frame 0 is the common prefix of its topics and a PUB socket matches
// it against each subscription alone. Subscriptions that cover the
// topics one by one do not qualify: that subscriber's ACK lists no form
// and it gets every record as DATA; one subscribed to the common prefix
// gets MULTI.
func TestMultiNeedsOnePrefixCommonToAllTopics(t *testing.T) {
	needPyzmq(t)
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pub, sync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	const n = 20_000
	p := start(t, ctx, syncpub, "--bind", pub, "--sync-bind", sync, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "3", "--count", fmt.Sprint(n), "--topics", "prices.eur,prices.usd", "--log-level", "warn")
	each := start(t, ctx, python, script("subscriber.py"), "--pub", pub, "--sync", sync, "--id", "py-each", "--multi",
		"--topics", "prices.eur", "prices.usd")
	common := start(t, ctx, python, script("subscriber.py"), "--pub", pub, "--sync", sync, "--id", "py-common", "--multi",
		"--topics", "prices.")
	all := start(t, ctx, python, script("subscriber.py"), "--pub", pub, "--sync", sync, "--id", "py-all", "--multi")
	for name, s := range map[string]*proctest.Proc{"one prefix per topic": each, "common prefix": common, "every topic": all} {
		wait(t, ctx, name, s, 0)
		if lines := strings.Count(s.Stdout.String(), "\n"); lines != n {
			t.Errorf("%s: %d records, want %d", name, lines, n)
		}
	}
	wait(t, ctx, "syncpub", p, 0)
	if e := each.Stderr.String(); !strings.Contains(e, "forms none") || !strings.Contains(e, "multi 0\n") {
		t.Errorf("one prefix per topic: want an ACK without forms and no MULTI:\n%s", e)
	}
	for name, s := range map[string]*proctest.Proc{"common prefix": common, "every topic": all} {
		e := s.Stderr.String()
		m := regexp.MustCompile(`multi (\d+)`).FindStringSubmatch(e)
		if !strings.Contains(e, "forms multi") || m == nil || m[1] == "0" {
			t.Errorf("%s: want an ACK listing multi and MULTI messages:\n%s", name, e)
		}
	}
}
