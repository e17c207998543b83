package main

import (
	"fmt"
	"strings"
)

// shape is one row of the comparison: the same job run on both systems.
type shape struct {
	name   string
	subs   int     // subscriber processes
	count  int     // messages published
	size   int     // payload bytes; 0 means the zguide's 7-byte "Rhubarb"
	topics int     // topics (NATS subjects) published round-robin; subscribers take all
	rate   float64 // messages per second; 0 is as fast as possible (throughput rows)
}

// zguidePayload is the zguide's update payload.
const zguidePayload = "Rhubarb"

func (s shape) payloadBytes() int {
	if s.size == 0 {
		return len(zguidePayload)
	}
	return s.size
}

// latency reports whether the row measures publish-to-deliver latency at
// a paced rate rather than wall time at full speed.
func (s shape) latency() bool { return s.rate > 0 }

// allShapes lists every row in the order they run.
func allShapes() []shape {
	return []shape{
		{name: "zguide", subs: 10, count: 1_000_000, topics: 1},
		{name: "size-64", subs: 4, count: 200_000, size: 64, topics: 1},
		{name: "size-1k", subs: 4, count: 200_000, size: 1 << 10, topics: 1},
		{name: "size-16k", subs: 4, count: 200_000, size: 16 << 10, topics: 1},
		{name: "fanout-1", subs: 1, count: 100_000, topics: 1},
		{name: "fanout-10", subs: 10, count: 100_000, topics: 1},
		{name: "fanout-50", subs: 50, count: 100_000, topics: 1},
		{name: "fanout-100", subs: 100, count: 100_000, topics: 1},
		{name: "topics-10", subs: 2, count: 200_000, size: 1 << 10, topics: 10},
		{name: "topics-1000", subs: 2, count: 200_000, size: 1 << 10, topics: 1_000},
		{name: "topics-10000", subs: 2, count: 200_000, size: 1 << 10, topics: 10_000},
		{name: "latency-1k", subs: 4, count: 5_000, size: 16, topics: 1, rate: 1_000},
		{name: "latency-10k", subs: 4, count: 50_000, size: 16, topics: 1, rate: 10_000},
	}
}

// quick shrinks a row for a smoke run: a hundredth of the messages (at
// least 200), same subscribers, payloads and topics.
func (s shape) quick() shape {
	s.count = max(200, s.count/100)
	return s
}

// selectShapes returns the rows named in the comma-separated list (all
// when it is empty), in their standard order.
func selectShapes(list string, quick bool) ([]shape, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	all := len(want) == 0
	var out []shape
	for _, s := range allShapes() {
		if !all && !want[s.name] {
			continue
		}
		delete(want, s.name)
		if quick {
			s = s.quick()
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
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// topicNames returns the row's topic names; NATS subjects are these under
// a common prefix.
func (s shape) topicNames() []string {
	if s.topics <= 1 {
		return []string{"update"}
	}
	names := make([]string, s.topics)
	for i := range names {
		names[i] = fmt.Sprintf("t%d", i)
	}
	return names
}
