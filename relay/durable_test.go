package relay

import (
	"context"
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
)

// TestRelayWithDataDir: a relay keeps its history in a journal, which
// takes the upstream publisher's id and epoch, and forwards everything.
func TestRelayWithDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	origin, err := coord.NewPublisher(loopbackPublisher(1))
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	down := loopbackPublisher(1)
	down.DataDir = t.TempDir()
	r, err := New(Config{
		Upstream:   coord.SubscriberConfig{Connect: origin.Endpoint(), Sync: origin.SyncEndpoint(), ID: "relay"},
		Downstream: down,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	pub := waitPublisher(t, ctx, r)
	if pub.ID() != origin.ID() || pub.Epoch() != origin.Epoch() {
		t.Fatalf("the journal's publisher is %s/%d, the origin %s/%d", pub.ID(), pub.Epoch(), origin.ID(), origin.Epoch())
	}
	_, rec := subscribe(t, pub, "leaf")
	if err := origin.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	publishAndEnd(t, ctx, origin, n, done)
	<-rec.ended
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.got["t"]; len(got) != n || len(rec.losses) != 0 {
		t.Fatalf("got %d records, losses %+v", len(got), rec.losses)
	}
}
