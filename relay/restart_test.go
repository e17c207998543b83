package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
)

// epochRecord is what a subscriber of a relay saw across an upstream
// restart: the records of each epoch, the restarts, the END.
type epochRecord struct {
	mu       sync.Mutex
	got      map[uint64][]uint64 // by epoch, sequences of topic "t"
	restarts []uint64            // the new epoch of each EventRestart
	ended    chan struct{}
}

func (r *epochRecord) handle(ev coord.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Type {
	case coord.EventMessage:
		r.got[ev.Epoch] = append(r.got[ev.Epoch], ev.Seq)
	case coord.EventRestart:
		r.restarts = append(r.restarts, ev.Epoch)
	case coord.EventEnd:
		if ev.Cause == "" {
			close(r.ended)
		}
	}
}

// TestRelayFollowsUpstreamRestart: the origin dies without END and comes
// back with a new epoch on the same endpoints. The relay gives the old
// epoch up downstream without END and serves the new one as a new epoch
// of its own: its subscriber sees the restart as it would have seen the
// origin's, gets the new epoch whole and its END, and the relay reports
// the restart (what the old epoch published after its last record is
// unknown) and nothing else.
func TestRelayFollowsUpstreamRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := coord.NewPublisher(loopbackPublisher(1))
	if err != nil {
		t.Fatal(err)
	}
	r, done := startRelay(t, ctx, first, 1, "relay-1")
	down := waitPublisher(t, ctx, r)
	rec := &epochRecord{got: map[uint64][]uint64{}, ended: make(chan struct{})}
	sub, err := coord.NewSubscriber(coord.SubscriberConfig{Connect: down.Endpoint(), Sync: down.SyncEndpoint(), ID: "leaf", Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := first.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		if _, err := first.Publish(ctx, "t", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "the leaf to get the first epoch", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.got[first.Epoch()]) == n
	})
	first.Close() // dies without END

	cfg := loopbackPublisher(1)
	cfg.ID = first.ID()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = first.Endpoint(), first.SyncEndpoint(), first.RecoveryEndpoint()
	second, err := coord.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if !envelope.EpochAfter(second.Epoch(), first.Epoch()) {
		t.Fatalf("epoch %d does not follow %d", second.Epoch(), first.Epoch())
	}
	if err := second.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := second.Publish(ctx, "t", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := second.Shutdown(ctx); err != nil {
		t.Fatalf("origin: %v", err)
	}
	err = <-done
	var re *RestartError
	if !errors.As(err, &re) || re.Epoch != first.Epoch() || re.New != second.Epoch() {
		t.Fatalf("relay: %v, want only the restart from %d to %d", err, first.Epoch(), second.Epoch())
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok && len(u.Unwrap()) != 1 {
		t.Fatalf("relay: %v, want only the restart", err)
	}
	<-rec.ended
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.restarts) != 1 || rec.restarts[0] != second.Epoch() {
		t.Errorf("restarts %v, want one to %d", rec.restarts, second.Epoch())
	}
	for _, epoch := range []uint64{first.Epoch(), second.Epoch()} {
		seqs := rec.got[epoch]
		if len(seqs) != n {
			t.Errorf("epoch %d: %d records, want %d", epoch, len(seqs), n)
		}
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Fatalf("epoch %d: record %d has seq %d", epoch, i, s)
			}
		}
	}
	if r.Publisher().Epoch() != second.Epoch() || r.Stats().Restarts != 1 {
		t.Errorf("relay serves epoch %d after %d restart(s)", r.Publisher().Epoch(), r.Stats().Restarts)
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
