package main

import (
	"fmt"
	"strings"
	"time"
)

// shape is one row of the comparison: the same job run on every system.
type shape struct {
	Name   string  `json:"name"`
	Subs   int     `json:"subs"`   // subscribers
	Count  int     `json:"count"`  // messages published (live, after the backlog of a late shape)
	Size   int     `json:"size"`   // payload bytes; 0 means the zguide's 7-byte "Rhubarb"
	Topics int     `json:"topics"` // topics (NATS subjects) published round-robin; subscribers take all
	Rate   float64 `json:"rate"`   // messages per second; 0 is as fast as possible (throughput rows)
	// InProc puts every subscriber in one process: syncmq, Subs
	// coord.Subscribers (each its own connections, as Subs programs
	// would have); NATS, one connection with Subs subscriptions (or
	// ordered consumers), as nats.go's documentation has a program share
	// its connection.
	InProc bool `json:"in_proc,omitempty"`
	// Backlog, when above zero, makes a late-joiner row: Backlog
	// messages are published and retained before the one subscriber
	// starts from the earliest record, catches up, and then takes Count
	// live messages. NATS core retains nothing and sits these out.
	Backlog int `json:"backlog,omitempty"`
	// ReplayUnlimited raises syncmq's replay budget (recovery rate
	// limits) out of the way; every other setting stays at its default.
	ReplayUnlimited bool `json:"replay_unlimited,omitempty"`
	// Timeout, when set, bounds one job of this shape below --timeout: a
	// shape expected to fail on one system should not hold the run.
	Timeout time.Duration `json:"timeout_ns,omitempty"`
}

// zguidePayload is the zguide's update payload.
const zguidePayload = "Rhubarb"

func (s shape) payloadBytes() int {
	if s.Size == 0 {
		return len(zguidePayload)
	}
	return s.Size
}

// latency reports whether the row measures publish-to-deliver latency at
// a paced rate rather than wall time at full speed.
func (s shape) latency() bool { return s.Rate > 0 }

// late reports whether the row is a late joiner catching up a backlog.
func (s shape) late() bool { return s.Backlog > 0 }

// systems are the systems that run the shape, in the order they run.
func (s shape) systems() []system {
	if s.late() {
		return []system{syncmq, syncmqDisk, jsMem, jsFile}
	}
	return allSystems()
}

// allShapes lists every row in the order they run.
func allShapes() []shape {
	return []shape{
		{Name: "zguide", Subs: 10, Count: 1_000_000, Topics: 1},
		{Name: "size-64", Subs: 4, Count: 200_000, Size: 64, Topics: 1},
		{Name: "size-1k", Subs: 4, Count: 200_000, Size: 1 << 10, Topics: 1},
		{Name: "size-16k", Subs: 4, Count: 200_000, Size: 16 << 10, Topics: 1},
		{Name: "fanout-1", Subs: 1, Count: 100_000, Topics: 1},
		{Name: "fanout-10", Subs: 10, Count: 100_000, Topics: 1},
		{Name: "fanout-50", Subs: 50, Count: 100_000, Topics: 1},
		{Name: "fanout-100", Subs: 100, Count: 100_000, Topics: 1},
		{Name: "subs-250", Subs: 250, Count: 10_000, Topics: 1, InProc: true},
		// All 1,000 on one host: syncpub is run with its per-address
		// bounds (--max-conns-per-ip, --max-subscribers-per-ip) raised.
		{Name: "subs-1000", Subs: 1000, Count: 10_000, Topics: 1, InProc: true, Timeout: 45 * time.Second},
		{Name: "topics-10", Subs: 2, Count: 200_000, Size: 1 << 10, Topics: 10},
		{Name: "topics-1000", Subs: 2, Count: 200_000, Size: 1 << 10, Topics: 1_000},
		{Name: "topics-10000", Subs: 2, Count: 200_000, Size: 1 << 10, Topics: 10_000},
		{Name: "late-1k", Subs: 1, Count: 100_000, Size: 1 << 10, Topics: 1, Backlog: 1_000_000},
		{Name: "late-1k-unlimited", Subs: 1, Count: 100_000, Size: 1 << 10, Topics: 1, Backlog: 1_000_000, ReplayUnlimited: true},
		{Name: "latency-1k", Subs: 4, Count: 5_000, Size: 16, Topics: 1, Rate: 1_000},
		{Name: "latency-10k", Subs: 4, Count: 50_000, Size: 16, Topics: 1, Rate: 10_000},
	}
}

// quick shrinks a row for a smoke run: a hundredth of the messages (at
// least 200) and of the backlog, same subscribers, payloads and topics.
func (s shape) quick() shape {
	s.Count = max(200, s.Count/100)
	if s.Backlog > 0 {
		s.Backlog = max(200, s.Backlog/100)
	}
	return s
}

// scaled multiplies a row's messages and backlog by f, for a longer run
// to profile (at least one message).
func (s shape) scaled(f float64) shape {
	s.Count = max(1, int(float64(s.Count)*f))
	if s.Backlog > 0 {
		s.Backlog = max(1, int(float64(s.Backlog)*f))
	}
	return s
}

// selectShapes returns the rows named in the comma-separated list (all
// when it is empty), in their standard order, shrunk for a quick run or
// scaled by scale (1: as listed).
func selectShapes(list string, quick bool, scale float64) ([]shape, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	all := len(want) == 0
	var out []shape
	for _, s := range allShapes() {
		if !all && !want[s.Name] {
			continue
		}
		delete(want, s.Name)
		if quick {
			s = s.quick()
		}
		if scale > 0 && scale != 1 {
			s = s.scaled(scale)
		}
		out = append(out, s)
	}
	for n := range want {
		return nil, fmt.Errorf("shapes: no shape %q (have %s)", n, shapeNames())
	}
	return out, nil
}

func shapeNames() string {
	var names []string
	for _, s := range allShapes() {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// topicNames returns the row's topic names; NATS subjects are these under
// a common prefix.
func (s shape) topicNames() []string {
	if s.Topics <= 1 {
		return []string{"update"}
	}
	names := make([]string, s.Topics)
	for i := range names {
		names[i] = fmt.Sprintf("t%d", i)
	}
	return names
}

// deliveries is how many messages every subscriber together should count.
func (s shape) deliveries() int { return s.Subs * (s.Backlog + s.Count) }
