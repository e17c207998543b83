package coord

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/syncmq/syncmq/membership"
)

// TestCloseFromOnMember: Close and Shutdown are safe from an OnMember
// callback, as GossipConfig.OnMember says: the publisher that closes
// itself on the first member event returns, and so does its Close.
func TestCloseFromOnMember(t *testing.T) {
	seed := clusterPublisher(t, "seed", QuorumRule{}, nil)
	for _, graceful := range []bool{false, true} {
		cfg := loopbackConfig()
		cfg.Gossip = gossipConfig("closer", seed.GossipAddr())
		var (
			pub  *Publisher
			mu   sync.Mutex
			done = make(chan struct{})
			once sync.Once
		)
		cfg.Gossip.OnMember = func(membership.Event) {
			once.Do(func() {
				mu.Lock()
				p := pub
				mu.Unlock()
				if graceful {
					_ = p.Shutdown(context.Background())
				} else {
					_ = p.Close()
				}
				close(done)
			})
		}
		mu.Lock()
		p, err := NewPublisher(cfg)
		pub = p
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("graceful %v: Close from OnMember did not return", graceful)
		}
		p.Close()
	}
}
