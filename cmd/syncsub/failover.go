package main

import (
	"context"
	"sync"
	"time"

	"github.com/syncmq/syncmq/coord"
	"go.uber.org/zap"
)

// failover keeps a subscriber on one of several relays of one stream: it
// watches the data connection to the current one, and when it has been
// down for --failover-after (the relay died, or never came up), it moves
// to the next relay in the list. The subscriber's streams stay: it joins
// the new relay on a new connection and repairs from that relay's history
// whatever it had not received yet, so nothing is lost, and records it
// already had are dropped as duplicates.
//
// A move that brings no connection doubles the wait before the next one,
// up to maxFailoverBackoff times --failover-after: a relay that is alive
// but slow to accept (hundreds of subscribers arriving at once on a busy
// host) gets the time to take it, instead of the subscriber going round
// the list, back to the dead relay and again. The first connection
// resets the wait.
type failover struct {
	relays []coord.Endpoints
	after  time.Duration
	lg     *zap.Logger

	mu        sync.Mutex
	cur       int
	up        bool
	downSince time.Time
	wait      time.Duration // how long the current relay may stay down
}

// maxFailoverBackoff bounds the doubled wait, in --failover-after.
const maxFailoverBackoff = 8

func newFailover(relays []coord.Endpoints, after time.Duration, lg *zap.Logger) *failover {
	return &failover{relays: relays, after: after, lg: lg, downSince: time.Now(), wait: after}
}

// note follows the connection events (from the subscriber's Handler).
func (f *failover) note(ev coord.Event) {
	if ev.Type != coord.EventConnected && ev.Type != coord.EventDisconnected {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.Endpoint != f.relays[f.cur].Pub {
		return
	}
	f.up = ev.Type == coord.EventConnected
	if f.up {
		f.wait = f.after
	} else {
		f.downSince = time.Now()
	}
}

// run moves sub to the next relay whenever the current one has been down
// for f.after, until ctx ends or sub's job is done.
func (f *failover) run(ctx context.Context, sub *coord.Subscriber) {
	t := time.NewTicker(f.after / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done():
			return
		case now := <-t.C:
			if next, ok := f.due(now); ok {
				f.move(sub, next)
			}
		}
	}
}

// due reports the relay to move to, if the current one is down long enough.
func (f *failover) due(now time.Time) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up || now.Sub(f.downSince) < f.wait {
		return 0, false
	}
	return (f.cur + 1) % len(f.relays), true
}

// moved makes next the current relay, down since now, and doubles the
// wait (see failover). It returns the relays left and taken, and how long
// the one left was down.
func (f *failover) moved(next int, now time.Time) (from, to coord.Endpoints, downFor time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	from, downFor = f.relays[f.cur], f.wait
	f.cur, f.up, f.downSince = next, false, now
	f.wait = min(2*f.wait, maxFailoverBackoff*f.after)
	return from, f.relays[next], downFor
}

func (f *failover) move(sub *coord.Subscriber, next int) {
	from, to, downFor := f.moved(next, time.Now())
	f.lg.Warn("relay unreachable; failing over", zap.String("from", from.Pub), zap.String("to", to.Pub), zap.Duration("down_for", downFor))
	sub.RemovePublisher(from.Pub)
	if err := sub.AddPublisher(to); err != nil {
		f.lg.Warn("failover", zap.String("to", to.Pub), zap.Error(err))
	}
}
