package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lines collects what the printer writes to stderr.
type lines []string

func (l *lines) Println(a ...any) { *l = append(*l, fmt.Sprint(a...)) }

var pubID = envelope.ID{0xab, 0xcd}

// stream is a run with one of every event the output shows.
func stream() []coord.Event {
	return []coord.Event{
		{Type: coord.EventJoined, Publisher: pubID, Epoch: 3, Endpoint: "tcp://127.0.0.1:5561"},
		{Type: coord.EventMessage, Publisher: pubID, Epoch: 3, Topic: "update", Seq: 7, Payload: []byte("Rhubarb")},
		{Type: coord.EventLoss, Publisher: pubID, Epoch: 3, Topic: "update", From: 8, To: 9, Cause: "slow-consumer"},
		{Type: coord.EventCaughtUp, Publisher: pubID, Epoch: 3, Topic: "update", Seq: 10},
		{Type: coord.EventLoss, Publisher: pubID, Epoch: 3, Topic: "update", From: 11, OpenEnded: true, Cause: "publisher-restart"},
		{Type: coord.EventRestart, Publisher: pubID, Epoch: 4},
		{Type: coord.EventDisconnected, Publisher: pubID, Endpoint: "tcp://127.0.0.1:5561"},
		{Type: coord.EventEnd, Publisher: pubID, Epoch: 4},
	}
}

func render(format string, v verdict, st coord.SubscriberStats) (stdout string, stderr lines) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	p := newPrinter(w, &stderr, format)
	for _, ev := range stream() {
		p.handle(ev)
	}
	p.summary(v, st, 1)
	return buf.String(), stderr
}

func TestTextOutput(t *testing.T) {
	st := coord.SubscriberStats{Received: 1, Lost: 2, Gaps: 1}
	out, errs := render("text", verdict{outcome: outcomeLost, code: 1}, st)
	if out != "update 7 Rhubarb\n" {
		t.Fatalf("stdout %q: want only the message", out)
	}
	want := []string{
		"joined publisher abcd0000 (epoch 3) at tcp://127.0.0.1:5561",
		"LOST update 8-9 (2 messages) from publisher abcd0000 epoch 3: slow-consumer",
		"caught up: update live again at seq 10 (publisher abcd0000)",
		"LOST update from 11 on (how many is unknown) from publisher abcd0000 epoch 3: publisher-restart",
		"publisher abcd0000 restarted: new epoch 4",
		"END from publisher abcd0000 epoch 4",
		"received 1 updates; outcome lost: lost 2, recovered 0, gaps 1",
	}
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stderr lines:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}

func TestCountOutput(t *testing.T) {
	out, errs := render("count", verdict{outcome: outcomeOK}, coord.SubscriberStats{Received: 1, Recovered: 1})
	if want := "Received 1 updates\noutcome ok: lost 0, recovered 1, gaps 0\nlatency: no live deliveries\n"; out != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
	if len(errs) != 6 {
		t.Fatalf("stderr %q: want the six events", errs)
	}
}

// TestJSONOutput: every line is a typed object; messages keep their
// fields; the summary comes last.
func TestJSONOutput(t *testing.T) {
	st := coord.SubscriberStats{Received: 1, Lost: 2, Gaps: 1}
	out, errs := render("json", verdict{outcome: outcomeLost, code: 1, reason: "2 messages lost"}, st)
	if len(errs) != 0 {
		t.Fatalf("json wrote %q to stderr", errs)
	}
	var types []string
	var objs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		types = append(types, fmt.Sprint(m["type"]))
		objs = append(objs, m)
	}
	if got, want := strings.Join(types, ","), "joined,message,loss,caught-up,loss,publisher-restart,end,summary"; got != want {
		t.Fatalf("types %s, want %s", got, want)
	}
	msg := objs[1]
	for _, k := range []string{"topic", "seq", "publisher", "epoch", "time_ns", "payload"} {
		if _, ok := msg[k]; !ok {
			t.Errorf("message lacks %q: %v", k, msg)
		}
	}
	if loss := objs[2]; loss["from"] != 8.0 || loss["to"] != 9.0 || loss["count"] != 2.0 || loss["cause"] != "slow-consumer" {
		t.Errorf("loss line %v", loss)
	}
	if open := objs[4]; open["from"] != 11.0 || open["to"] != 0.0 || open["count"] != 0.0 || open["cause"] != "publisher-restart" {
		t.Errorf("open-ended loss line %v: want to 0 and count 0", open)
	}
	sum := objs[len(objs)-1]
	if sum["outcome"] != "lost" || sum["exit_code"] != 1.0 || sum["lost"] != 2.0 || sum["reason"] != "2 messages lost" {
		t.Errorf("summary %v", sum)
	}
}

func TestJSONBinaryPayloadAsBase64(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	p := newPrinter(w, &lines{}, "json")
	p.handle(coord.Event{Type: coord.EventMessage, Topic: "b", Seq: 1, Payload: []byte{0xff, 0xfe}})
	w.Flush()
	if !strings.Contains(buf.String(), `"payload_b64":"//4="`) {
		t.Fatalf("got %s", buf.String())
	}
}

// TestJudge: every outcome the library judges maps to its exit code and
// a reason; anything else is an interruption.
func TestJudge(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
		code int
	}{
		{nil, outcomeOK, cli.ExitOK},
		{&coord.JobError{Outcome: coord.OutcomeLost, Reason: "3 messages lost in 1 loss events"}, outcomeLost, cli.ExitFailed},
		{&coord.JobError{Outcome: coord.OutcomeQuorumFailed, Reason: "quorum"}, outcomeQuorumFailed, cli.ExitQuorumFailed},
		{&coord.JobError{Outcome: coord.OutcomePublisherGone, Reason: "gone"}, outcomePublisherGone, cli.ExitPublisherGone},
		{&coord.JobError{Outcome: coord.OutcomeInterrupted, Reason: "interrupted"}, outcomeInterrupted, cli.ExitInterrupted},
		{coord.ErrClosed, outcomeInterrupted, cli.ExitInterrupted},
	} {
		v := judge(tt.err)
		if v.outcome != tt.want || v.code != tt.code {
			t.Errorf("%v: got %s (%d), want %s (%d)", tt.err, v.outcome, v.code, tt.want, tt.code)
		}
		if (v.err() == nil) != (tt.code == 0) || (tt.code != 0 && v.reason == "") || cli.CodeOf(v.err()) != tt.code {
			t.Errorf("%v: err %v reason %q, want code %d", tt.err, v.err(), v.reason, tt.code)
		}
	}
}

// TestCountOutputLatency: the count summary reports p50 and p99 from the
// subscriber's latency histogram.
func TestCountOutputLatency(t *testing.T) {
	st := coord.SubscriberStats{Received: 200}
	bounds := coord.LatencyBounds()
	i := slices.Index(bounds, 200*time.Microsecond)         // the bucket (100 µs, 200 µs]
	st.Latency.Counts[i], st.Latency.Counts[i+3] = 100, 100 // and (1 ms, 2 ms]
	st.Latency.Count = 200
	out, _ := render("count", verdict{outcome: outcomeOK}, st)
	want := "Received 200 updates\noutcome ok: lost 0, recovered 0, gaps 0\nlatency p50 200µs, p99 1.98ms (publish to deliver, 200 live deliveries)\n"
	if out != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
}

func TestFormatLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2500 * time.Nanosecond: "2.5µs", 83 * time.Microsecond: "83µs", 1234 * time.Microsecond: "1.23ms",
		56780 * time.Microsecond: "56.8ms", 1500 * time.Millisecond: "1.50s",
	} {
		if got := formatLatency(d); got != want {
			t.Errorf("formatLatency(%v) = %q, want %q", d, got, want)
		}
	}
}
