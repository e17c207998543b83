package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/internal/invariant"
)

// TestRunsOutput: --output runs folds each stream's consecutive
// deliveries into run lines, ends a run at a gap, a replay or another
// event, and what it writes is judged by the invariant checker as the
// records themselves would be.
func TestRunsOutput(t *testing.T) {
	var buf bytes.Buffer
	p := newPrinter(bufio.NewWriter(&buf), &lines{}, "runs")
	msg := func(topic string, seq uint64, replay bool) {
		p.handle(coord.Event{Type: coord.EventMessage, Publisher: pubID, Epoch: 3, Topic: topic, Seq: seq, Replay: replay, Payload: []byte("x")})
	}
	p.handle(coord.Event{Type: coord.EventJoined, Publisher: pubID, Epoch: 3, Endpoint: "tcp://127.0.0.1:5561"})
	for seq := uint64(1); seq <= 3000; seq++ { // round robin: both runs stay open
		msg("a", seq, false)
		msg("b", seq, false)
	}
	p.handle(coord.Event{Type: coord.EventLoss, Publisher: pubID, Epoch: 3, Topic: "a", From: 3001, To: 3004, Cause: "beyond-retention"})
	for seq := uint64(3005); seq <= 3010; seq++ {
		msg("a", seq, seq <= 3007) // a replay, then live
	}
	for seq := uint64(3001); seq <= maxRunRecords+3001; seq++ {
		msg("b", seq, false) // one record past the longest run
	}
	p.handle(coord.Event{Type: coord.EventEnd, Publisher: pubID, Epoch: 3})
	st := coord.SubscriberStats{Received: 3000 + 6 + 3000 + maxRunRecords + 1, Recovered: 3, Lost: 4, LossEvents: 1, Gaps: 1}
	p.summary(verdict{outcome: outcomeLost, code: 1, reason: "4 messages lost"}, st, 1)

	out := buf.String()
	if n := strings.Count(out, `"type":"run"`); n != 6 {
		t.Errorf("%d run lines, want 6 (a 1-3000, b 1-3000, a 3005-3007 replayed, a 3008-3010, b 3001-103000, b 103001):\n%s", n, out)
	}
	if !strings.Contains(out, `"from":3005,"to":3007,"count":3,"replay":true`) {
		t.Errorf("the replayed records are not a run of their own:\n%s", out)
	}
	c := invariant.New(invariant.Options{})
	sum, err := c.ReadJSON("s", 1, strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	c.JudgeRun("s", 1, sum, 1)
	if !c.Complete("s", 1, pubID.String(), 3, invariant.Finals{"a": 3010, "b": maxRunRecords + 3001}, func(string) bool { return true }, func(string) uint64 { return 1 }) {
		t.Errorf("END not seen")
	}
	if err := c.Err(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
