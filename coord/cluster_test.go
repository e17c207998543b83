package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/membership"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// gossipConfig is a fast local-profile gossip node on 127.0.0.1 with an
// OS-chosen port, joining seeds.
func gossipConfig(name string, seeds ...string) *GossipConfig {
	return &GossipConfig{
		Node: membership.Config{
			NodeName: name,
			BindAddr: "127.0.0.1",
			Profile:  membership.ProfileLocal,
			Join:     seeds,
		},
		JoinRetry: 100 * time.Millisecond,
	}
}

// clusterPublisher starts a publisher on loopback that gossips as name.
func clusterPublisher(t *testing.T, name string, rule QuorumRule, topics []string, seeds ...string) *Publisher {
	t.Helper()
	cfg := loopbackConfig()
	cfg.Gossip = gossipConfig(name, seeds...)
	cfg.Quorum, cfg.Topics = rule, topics
	cfg.Settle = 500 * time.Millisecond
	p, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p
}

// clusterSubscriber starts a subscriber that knows only a gossip seed.
func clusterSubscriber(t *testing.T, name string, rec *recorder, subscribe []string, seeds ...string) *Subscriber {
	t.Helper()
	s, err := NewSubscriber(SubscriberConfig{
		Subscribe: subscribe,
		Handler:   rec.handle,
		Gossip:    gossipConfig(name, seeds...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestClusterDiscoveryQuorumAll: subscribers given only a gossip seed find
// the publisher, the publisher waits for all of them, and all of them
// receive every message.
func TestClusterDiscoveryQuorumAll(t *testing.T) {
	const subs, count = 5, 10_000
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pub := clusterPublisher(t, "pub", QuorumRule{Kind: QuorumAll}, nil)
	recs := make([]*recorder, subs)
	for i := range recs {
		recs[i] = newRecorder(count)
		s := clusterSubscriber(t, fmt.Sprintf("sub-%d", i), recs[i], nil, pub.GossipAddr())
		if s.ID() != fmt.Sprintf("sub-%d", i) {
			t.Fatalf("subscriber id %q is not its node name", s.ID())
		}
	}
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.Live != subs || st.Need != subs {
		t.Fatalf("quorum all reached with live %d need %d, want %d", st.Live, st.Need, subs)
	}
	for i := 0; i < count; i++ {
		if _, err := pub.Publish(ctx, "update", []byte("Rhubarb")); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range recs {
		name := fmt.Sprintf("subscriber %d", i)
		r.wait(t, ctx, name)
		r.check(t, name, count)
	}
}

// TestClusterTwoPublishers: a subscriber of two topics discovers both
// publishers, each with its own sequences, and misses nothing; a
// subscriber of one topic connects only to its publisher.
func TestClusterTwoPublishers(t *testing.T) {
	const count = 2_000
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pa := clusterPublisher(t, "pub-a", QuorumRule{Kind: QuorumCount, N: 2}, []string{"a."})
	pb := clusterPublisher(t, "pub-b", QuorumRule{Kind: QuorumCount, N: 1}, []string{"b."}, pa.GossipAddr())
	both, onlyA := newRecorder(2*count), newRecorder(count)
	sBoth := clusterSubscriber(t, "both", both, []string{"a.", "b."}, pb.GossipAddr())
	sA := clusterSubscriber(t, "only-a", onlyA, []string{"a."}, pa.GossipAddr())
	for _, p := range []*Publisher{pa, pb} {
		if err := p.WaitQuorum(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < count; i++ {
		if _, err := pa.Publish(ctx, "a.x", []byte("A")); err != nil {
			t.Fatal(err)
		}
		if _, err := pb.Publish(ctx, "b.y", []byte("B")); err != nil {
			t.Fatal(err)
		}
	}
	both.wait(t, ctx, "subscriber of both")
	onlyA.wait(t, ctx, "subscriber of a.")
	both.check(t, "subscriber of both", 2*count)
	onlyA.check(t, "subscriber of a.", count)
	if n := len(both.next); n != 2 {
		t.Errorf("subscriber of both saw %d streams, want 2: %v", n, both.next)
	}
	for key, next := range both.next {
		if next != count+1 {
			t.Errorf("%s ended at %d, want %d", key, next-1, count)
		}
	}
	if got := sA.Publishers(); len(got) != 1 || got[0] != pa.Endpoint() {
		t.Errorf("subscriber of a. connected to %v, want only %s", got, pa.Endpoint())
	}
	if got := sBoth.Stats().Gaps; got != 0 {
		t.Errorf("gaps %d", got)
	}
}

// TestClusterQuorumLostPause: under QuorumCount with policy pause, a
// subscriber that leaves stops publishing, and a replacement resumes it.
func TestClusterQuorumLostPause(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := loopbackConfig()
	cfg.Gossip = gossipConfig("pub")
	cfg.Quorum, cfg.QuorumLost, cfg.Settle = QuorumRule{Kind: QuorumCount, N: 2}, LostPause, 200*time.Millisecond
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Shutdown(context.Background())
	r1, r2, r3 := newRecorder(0), newRecorder(0), newRecorder(0)
	clusterSubscriber(t, "s1", r1, nil, pub.GossipAddr())
	s2 := clusterSubscriber(t, "s2", r2, nil, pub.GossipAddr())
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "t", []byte("before")); err != nil {
		t.Fatal(err)
	}

	s2.Close() // leaves the cluster: live drops to 1 of 2
	clustertest.WaitFor(t, 20*time.Second, "quorum lost", func() bool { return pub.Stats().QuorumLost })
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = pub.Publish(short, "t", []byte("paused"))
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish while quorum lost = %v, want it to block until its deadline", err)
	}

	clusterSubscriber(t, "s3", r3, nil, pub.GossipAddr())
	seq, err := pub.Publish(ctx, "t", []byte("after")) // blocks until s3 has joined
	if err != nil {
		t.Fatal(err)
	}
	if seq != 2 {
		t.Errorf("seq after pause %d, want 2: the refused publish must not take a number", seq)
	}
	if st := pub.Stats(); st.Live != 2 || st.QuorumLost {
		t.Errorf("after replacement: live %d lost %v", st.Live, st.QuorumLost)
	}
}

// TestClusterWrongKeyRejected: a subscriber with another gossip key cannot
// join, says why in its log, and never becomes a member.
func TestClusterWrongKeyRejected(t *testing.T) {
	key := func(s string) []byte {
		k, err := membership.ParseKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cfg := loopbackConfig()
	cfg.RecoveryBind = ""
	cfg.Gossip = gossipConfig("pub")
	cfg.Gossip.Node.SecretKey = key("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Shutdown(context.Background())

	core, logs := observer.New(zapcore.ErrorLevel)
	gc := gossipConfig("intruder", pub.GossipAddr())
	gc.Node.SecretKey = key("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")
	s, err := NewSubscriber(SubscriberConfig{Handler: func(Event) {}, Gossip: gc, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clustertest.WaitFor(t, 20*time.Second, "the key mismatch in the log", func() bool {
		return slices.ContainsFunc(logs.All(), func(e observer.LoggedEntry) bool {
			return e.Message == "gossip join rejected: the seeds use another gossip key (or none)"
		})
	})
	if m := pub.Members(); len(m) != 0 {
		t.Errorf("publisher sees members %v", m)
	}
}

func TestParseQuorumRule(t *testing.T) {
	for in, want := range map[string]QuorumRule{
		"all": {Kind: QuorumAll}, "majority": {Kind: QuorumMajority}, "3": {Kind: QuorumCount, N: 3},
	} {
		if got, err := ParseQuorumRule(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "-1", "most", "2x"} {
		if _, err := ParseQuorumRule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAdvertiseEndpoint(t *testing.T) {
	for _, tt := range []struct{ ep, want string }{
		{"tcp://*:5561", "tcp://10.0.0.7:5561"},
		{"tcp://0.0.0.0:5561", "tcp://10.0.0.7:5561"},
		{"tcp://[::]:5561", "tcp://10.0.0.7:5561"},
		{"tcp://192.168.1.2:5561", "tcp://192.168.1.2:5561"},
		{"", ""},
	} {
		if got := advertiseEndpoint(tt.ep, "10.0.0.7"); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.ep, got, tt.want)
		}
	}
}

// TestPublishRefusesUnannouncedTopic: subscribers find a publisher by its
// announced topics, so publishing outside them would reach nobody.
func TestPublishRefusesUnannouncedTopic(t *testing.T) {
	cfg := loopbackConfig()
	cfg.RecoveryBind = ""
	cfg.Topics = []string{"prices."}
	p, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	ctx := context.Background()
	if _, err := p.Publish(ctx, "prices.eur", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, "orders.1", []byte("1")); !errors.Is(err, ErrBadTopic) {
		t.Fatalf("unannounced topic: %v, want ErrBadTopic", err)
	}
}
