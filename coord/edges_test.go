package coord

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
)

// No silent loss at the edges: many topics with repairs, and a
// membership quorum judged before the cluster has gossiped.

// TestManyTopicsRepaired: 10,000 topics published round-robin, 3 records
// of 1 KiB each, to two subscribers. The network drops every 10th data
// message (DATA or MULTI) to one of them, gaps in many topics at once. Both receive
// every record in order; the gaps are repaired in FETCH_MANY requests of
// up to 1,024 ranges, not one request per topic.
func TestManyTopicsRepaired(t *testing.T) {
	const topics, perTopic, size = 10_000, 3, 1024
	const total = topics * perTopic
	pub := testPublisher(t, nil)
	proxy := clustertest.NewProxy(t, pub.Endpoint())
	var data, dropped atomic.Int64
	proxy.SetDrop(func(frames [][]byte) bool {
		// DATA (3 frames) and MULTI (4) are dropped; control messages,
		// on the control topic, pass.
		if len(frames) < 3 || len(frames) > 4 || len(frames[0]) > 0 && frames[0][0] == 0 {
			return false
		}
		if data.Add(1)%10 != 0 {
			return false
		}
		dropped.Add(int64(binary.BigEndian.Uint16(frames[1][6:8])))
		return true
	})
	direct, lossy := newRecorder(total), newRecorder(total)
	subDirect := testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "direct"}, direct)
	subLossy := testSubscriber(t, SubscriberConfig{Connect: proxy.Endpoint(), Sync: pub.SyncEndpoint(), Recovery: pub.RecoveryEndpoint(), ID: "lossy"}, lossy)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, s := range []*Subscriber{subDirect, subLossy} {
		if err := s.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	payload := make([]byte, size)
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("topic-%05d", i)
	}
	for i := 0; i < total; i++ {
		binary.BigEndian.PutUint64(payload, uint64(i))
		if _, err := pub.Publish(ctx, names[i%topics], payload); err != nil {
			t.Fatal(err)
		}
	}
	waitDone(t, direct, 2*time.Minute)
	waitDone(t, lossy, 2*time.Minute)
	direct.check(t, "direct subscriber", total)
	lossy.check(t, "lossy subscriber", total)
	_, replayed := lossy.counts()
	st := pub.Stats()
	t.Logf("%d records on %d topics; %d dropped on the way to one subscriber, %d repaired, in %d recovery requests",
		total, topics, dropped.Load(), replayed, st.Recovery.Served)
	if dropped.Load() == 0 || int64(replayed) < dropped.Load() {
		t.Fatalf("dropped %d, repaired %d", dropped.Load(), replayed)
	}
	if st.Recovery.Served > uint64(dropped.Load())/10 {
		t.Errorf("%d requests for %d gaps: not batched", st.Recovery.Served, dropped.Load())
	}
	if st.Topics != topics {
		t.Errorf("publisher has %d topics", st.Topics)
	}
}

// TestQuorumAllWaitsForSlowGossip: under quorum "all", one subscriber
// joins the cluster and handshakes at once, as the others would on a fast
// machine; the other four come later, still within Settle, as on a slow
// one. The publisher never starts with one live member: it holds the
// quorum until Settle, then waits for all five, and every subscriber
// receives every record from the first.
func TestQuorumAllWaitsForSlowGossip(t *testing.T) {
	const subs, count, settle = 5, 1000, 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := loopbackConfig()
	cfg.Gossip = gossipConfig("pub")
	cfg.Quorum = QuorumRule{Kind: QuorumAll}
	cfg.Settle = settle
	start := time.Now()
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Shutdown(context.Background()) })
	recs := make([]*recorder, subs)
	recs[0] = newRecorder(count)
	clusterSubscriber(t, "sub-0", recs[0], nil, pub.GossipAddr())
	waitFor(t, func() bool { return pub.Stats().Live == 1 }, "the first subscriber counted")
	st := pub.Stats()
	early := time.Since(start)
	if st.Quorum {
		t.Fatalf("quorum reached with %d live of %d needed, %v after start", st.Live, st.Need, early)
	}
	if early >= settle {
		t.Skipf("the first subscriber took %v, longer than Settle: the case needs it sooner", early)
	}
	for i := 1; i < subs; i++ {
		recs[i] = newRecorder(count)
		clusterSubscriber(t, fmt.Sprintf("sub-%d", i), recs[i], nil, pub.GossipAddr())
	}
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	st = pub.Stats()
	t.Logf("first subscriber counted %v after start; quorum at %v with %d live of %d", early.Round(time.Millisecond),
		st.QuorumAt.Sub(start).Round(time.Millisecond), st.Live, st.Need)
	if st.Live != subs || st.Need != subs {
		t.Fatalf("quorum all reached with live %d need %d, want %d: the others were not members within Settle", st.Live, st.Need, subs)
	}
	if st.QuorumAt.Sub(start) < settle {
		t.Errorf("quorum judged %v after start, before Settle %v", st.QuorumAt.Sub(start), settle)
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

// TestLateJoinerWithManyTopics: a subscriber that joins a publisher
// already publishing on 10,000 topics gets an ACK listing all of them
// (hundreds of KiB of JSON, more than a READY may be), joins, and starts
// every topic at the ACK's sequence; one that reconnects gets it again
// with the resume table.
func TestLateJoinerWithManyTopics(t *testing.T) {
	const topics = 10_000
	pub := testPublisher(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < topics; i++ {
		if _, err := pub.Publish(ctx, fmt.Sprintf("topic-%05d", i), []byte("before")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return pub.Stats().Published == topics }, "the first records sent")
	proxy := clustertest.NewProxy(t, pub.Endpoint())
	rec := newRecorder(2 * topics)
	sub := testSubscriber(t, SubscriberConfig{Connect: proxy.Endpoint(), Sync: pub.SyncEndpoint(), Recovery: pub.RecoveryEndpoint()}, rec)
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Cut() // the rejoin's ACK carries the resume table too
	proxy.Heal()
	waitFor(t, func() bool { return sub.Stats().Handshakes >= 2 }, "the rejoin")
	for i := 0; i < 2*topics; i++ {
		if _, err := pub.Publish(ctx, fmt.Sprintf("topic-%05d", i%topics), []byte("after")); err != nil {
			t.Fatal(err)
		}
	}
	waitDone(t, rec, time.Minute)
	rec.check(t, "late joiner", 2*topics)
	if st := sub.Stats(); st.HandshakeErrors != 0 {
		t.Errorf("stats %+v: handshake errors", st)
	}
}
