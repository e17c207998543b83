package coord

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
)

// TestSynchronizedStart is the foundation's acceptance test: ten
// subscribers and one publisher over TCP loopback; nothing is published
// before the tenth ACK, then every subscriber gets every message in order.
func TestSynchronizedStart(t *testing.T) {
	const subs = 10
	count := 100_000
	if testing.Short() {
		count = 20_000
	}
	for _, order := range []string{"subscribers-first", "publisher-first", "mixed"} {
		t.Run(order, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pubPort, syncPort := clustertest.FreePort(t), clustertest.FreePort(t)
			pubCfg := loopbackConfig()
			pubCfg.Bind, pubCfg.SyncBind = clustertest.Endpoint(pubPort), clustertest.Endpoint(syncPort)
			pubCfg.Expect = subs

			recs := make([]*recorder, subs)
			subscribers := make([]*Subscriber, 0, subs)
			startSub := func(i int) {
				recs[i] = newRecorder(count)
				s, err := NewSubscriber(SubscriberConfig{
					Connect: pubCfg.Bind, Sync: pubCfg.SyncBind,
					ID: fmt.Sprintf("sub-%d", i), Handler: recs[i].handle,
				})
				if err != nil {
					t.Fatal(err)
				}
				subscribers = append(subscribers, s)
			}
			defer func() {
				for _, s := range subscribers {
					s.Close()
				}
			}()
			early := map[string]int{"subscribers-first": subs, "publisher-first": 0, "mixed": subs / 2}[order]
			for i := 0; i < early; i++ {
				startSub(i)
			}
			pub, err := NewPublisher(pubCfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Shutdown(context.Background())
			for i := early; i < subs; i++ {
				startSub(i)
			}
			if err := pub.WaitQuorum(ctx); err != nil {
				t.Fatal(err)
			}
			quorumAt := pub.Stats().QuorumAt
			for i := 0; i < count; i++ {
				if _, err := pub.Publish(ctx, "update", []byte("Rhubarb")); err != nil {
					t.Fatal(err)
				}
			}
			for i, r := range recs {
				r.wait(t, ctx, fmt.Sprintf("subscriber %d", i))
			}
			for i, r := range recs {
				r.check(t, fmt.Sprintf("subscriber %d", i), count)
				if _, _, _, first := r.snapshot(); first < quorumAt.UnixNano() {
					t.Errorf("subscriber %d got a message published %v before quorum", i, time.Duration(quorumAt.UnixNano()-first))
				}
			}
			if st := pub.Stats(); st.Joined != subs || st.Published != uint64(count) {
				t.Errorf("publisher stats %+v", st)
			}
		})
	}
}

// TestQuorumTimeoutFail: with policy fail, the error says how many
// subscribers joined of how many expected.
func TestQuorumTimeoutFail(t *testing.T) {
	cfg := loopbackConfig()
	cfg.Expect, cfg.QuorumTimeout = 3, 300*time.Millisecond
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Shutdown(context.Background())
	rec := newRecorder(0)
	sub, err := NewSubscriber(SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "only", Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	err = pub.WaitQuorum(ctx)
	var qe *QuorumError
	if !errors.As(err, &qe) || !errors.Is(err, ErrQuorumTimeout) || qe.Joined != 1 || qe.Expect != 3 {
		t.Fatalf("got %v, want a quorum timeout with 1 of 3 joined", err)
	}
	if got := err.Error(); got != "coord: quorum timeout: 1 of 3 subscribers joined" {
		t.Fatalf("message: %s", got)
	}
	if _, err := pub.Publish(ctx, "t", []byte("x")); !errors.Is(err, ErrQuorumTimeout) {
		t.Fatalf("Publish after failed quorum: %v", err)
	}
}

// TestQuorumTimeoutProceed: with policy proceed, publishing starts with
// the subscribers present.
func TestQuorumTimeoutProceed(t *testing.T) {
	cfg := loopbackConfig()
	cfg.Expect, cfg.QuorumTimeout, cfg.QuorumPolicy = 2, 300*time.Millisecond, QuorumProceed
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Shutdown(context.Background())
	rec := newRecorder(100)
	sub, err := NewSubscriber(SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := pub.Publish(ctx, "t", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-rec.done:
	case <-ctx.Done():
		t.Fatal("timed out")
	}
	rec.check(t, "subscriber", 100)
}
