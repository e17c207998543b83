package main

import (
	"fmt"
	"sync"

	"github.com/syncmq/syncmq/coord"
)

// demoSub is one subscriber of the demo and what its Handler saw, per
// topic. It can be told to stall: to stop taking messages at the first
// one of a topic until released, the way a consumer stuck in its own
// work would.
type demoSub struct {
	name string
	sub  *coord.Subscriber

	mu         sync.Mutex
	topics     map[string]*topicTally
	errs       []string // order violations, at most maxDemoErrs
	ended      bool
	stallTopic string
	stalled    chan struct{} // closed when the Handler starts stalling
	release    chan struct{} // closed to end the stall
	stop       <-chan struct{}
}

// topicTally is what one subscriber saw of one topic.
type topicTally struct {
	first     uint64 // first sequence delivered or reported lost
	next      uint64 // the sequence expected next
	delivered uint64
	replayed  uint64
	lost      uint64
	losses    []coord.Event
}

const maxDemoErrs = 5

func newDemoSub(name string, stop <-chan struct{}) *demoSub {
	return &demoSub{name: name, topics: make(map[string]*topicTally), stalled: make(chan struct{}), release: make(chan struct{}), stop: stop}
}

func (d *demoSub) topic(name string) *topicTally {
	t := d.topics[name]
	if t == nil {
		t = &topicTally{}
		d.topics[name] = t
	}
	return t
}

// stallOn makes the Handler stall at the first message of topic.
func (d *demoSub) stallOn(topic string) {
	d.mu.Lock()
	d.stallTopic = topic
	d.mu.Unlock()
}

func (d *demoSub) handle(ev coord.Event) {
	d.mu.Lock()
	stall := false
	switch ev.Type {
	case coord.EventMessage:
		t := d.topic(ev.Topic)
		d.expect(ev.Topic, t, ev.Seq)
		t.next = ev.Seq + 1
		t.delivered++
		if ev.Replay {
			t.replayed++
		}
		if ev.Topic == d.stallTopic {
			d.stallTopic, stall = "", true
		}
	case coord.EventLoss:
		t := d.topic(ev.Topic)
		d.expect(ev.Topic, t, ev.From)
		t.next = ev.To + 1
		t.lost += ev.To - ev.From + 1
		t.losses = append(t.losses, ev)
	case coord.EventEnd:
		d.ended = true
	}
	d.mu.Unlock()
	if stall {
		close(d.stalled)
		select {
		case <-d.release:
		case <-d.stop:
		}
	}
}

// expect checks that seq comes next on topic.
func (d *demoSub) expect(name string, t *topicTally, seq uint64) {
	if t.first == 0 {
		t.first = seq
	} else if seq != t.next && len(d.errs) < maxDemoErrs {
		d.errs = append(d.errs, fmt.Sprintf("%s: %s seq %d after %d", d.name, name, seq, t.next-1))
	}
}

// tally returns a copy of what the subscriber saw of topic.
func (d *demoSub) tally(topic string) topicTally {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := *d.topic(topic)
	t.losses = append([]coord.Event(nil), t.losses...)
	return t
}

// has reports whether every sequence of topic up to last was delivered
// or reported lost.
func (d *demoSub) has(topic string, last uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.topic(topic).next > last
}

// orderErrors returns the order violations seen, if any.
func (d *demoSub) orderErrors() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.errs...)
}

func (d *demoSub) hasEnded() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ended
}

// complete checks that the subscriber got topic's sequences 1..last, all
// delivered, in order.
func (d *demoSub) complete(topic string, last uint64) error {
	t := d.tally(topic)
	if errs := d.orderErrors(); len(errs) > 0 {
		return fmt.Errorf("out of order: %s", errs[0])
	}
	if t.first != 1 || t.next != last+1 || t.delivered != last || t.lost != 0 {
		return fmt.Errorf("%s got %s from seq %d to %d: %d delivered, %d lost; want 1-%d all delivered",
			d.name, topic, t.first, t.next-1, t.delivered, t.lost, last)
	}
	return nil
}
