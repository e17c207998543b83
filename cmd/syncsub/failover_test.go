package main

import (
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
	"go.uber.org/zap"
)

// TestFailoverDue: the next relay is due only once the current one has
// had no connection for the whole delay; events of other endpoints and a
// connection that comes back in time change nothing; the list wraps.
func TestFailoverDue(t *testing.T) {
	relays := []coord.Endpoints{{Pub: "tcp://a:1", Sync: "tcp://a:2"}, {Pub: "tcp://b:1", Sync: "tcp://b:2"}}
	f := newFailover(relays, time.Second, zap.NewNop())
	start := f.downSince
	if _, ok := f.due(start.Add(999 * time.Millisecond)); ok {
		t.Fatal("due before the delay")
	}
	f.note(coord.Event{Type: coord.EventConnected, Endpoint: "tcp://a:1"})
	if _, ok := f.due(start.Add(time.Hour)); ok {
		t.Fatal("due while connected")
	}
	f.note(coord.Event{Type: coord.EventDisconnected, Endpoint: "tcp://b:1"}) // not the current one
	if _, ok := f.due(start.Add(time.Hour)); ok {
		t.Fatal("due after another endpoint's event")
	}
	f.note(coord.Event{Type: coord.EventDisconnected, Endpoint: "tcp://a:1"})
	down := f.downSince
	if _, ok := f.due(down.Add(500 * time.Millisecond)); ok {
		t.Fatal("due half way")
	}
	next, ok := f.due(down.Add(time.Second))
	if !ok || next != 1 {
		t.Fatalf("due = %d, %v; want relay 1", next, ok)
	}
	f.cur = 1
	if next, _ := f.due(down.Add(time.Hour)); next != 0 {
		t.Fatalf("after the last relay: %d, want 0", next)
	}
}

// TestFailoverBacksOff: each move that brings no connection doubles the
// wait before the next, up to maxFailoverBackoff times the delay, so a
// relay slow to accept is not left for the dead one it replaced; a
// connection resets it.
func TestFailoverBacksOff(t *testing.T) {
	relays := []coord.Endpoints{{Pub: "tcp://a:1", Sync: "tcp://a:2"}, {Pub: "tcp://b:1", Sync: "tcp://b:2"}}
	f := newFailover(relays, time.Second, zap.NewNop())
	now := f.downSince
	for i, want := range []time.Duration{1, 2, 4, 8, 8, 8} {
		wait := want * time.Second
		if _, ok := f.due(now.Add(wait - time.Millisecond)); ok {
			t.Fatalf("move %d: due before %v", i, wait)
		}
		next, ok := f.due(now.Add(wait))
		if !ok || next != (i+1)%2 {
			t.Fatalf("move %d: due = %d, %v after %v; want relay %d", i, next, ok, wait, (i+1)%2)
		}
		now = now.Add(wait)
		if _, _, down := f.moved(next, now); down != wait {
			t.Fatalf("move %d: down for %v, want %v", i, down, wait)
		}
	}
	f.note(coord.Event{Type: coord.EventConnected, Endpoint: relays[f.cur].Pub})
	f.note(coord.Event{Type: coord.EventDisconnected, Endpoint: relays[f.cur].Pub})
	if _, ok := f.due(f.downSince.Add(time.Second)); !ok {
		t.Fatal("a connection did not reset the wait to the delay")
	}
}
