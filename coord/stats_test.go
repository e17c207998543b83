package coord

import (
	"context"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/recovery"
)

// TestStatsCountBytesLatencyAndState: what the metrics exporter reads
// from the snapshots moves with the traffic: bytes on both ends, one
// latency sample per live record, handshakes, and the state gauges.
func TestStatsCountBytesLatencyAndState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := loopbackConfig()
	cfg.Expect = 1
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if st := pub.Stats(); st.Publishing || st.Quorum || st.Need != 1 {
		t.Fatalf("before the quorum: %+v", st)
	}
	const n, size = 1000, 100
	rec := newRecorder(0)
	sub, err := NewSubscriber(SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); !st.Publishing || !st.Quorum || st.Handshakes != 1 || st.Live != 1 {
		t.Fatalf("after the quorum: Publishing %v Quorum %v Handshakes %d Live %d", st.Publishing, st.Quorum, st.Handshakes, st.Live)
	}
	waitFor(t, func() bool { s := sub.Stats(); return s.Joined == 1 && s.Connected == 1 }, "the subscriber's gauges to show the join")
	payload := make([]byte, size)
	for range n {
		if _, err := pub.Publish(ctx, "t", payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, ctx, "subscriber")
	rec.check(t, "subscriber", n)
	if st := pub.Stats(); st.Published != n || st.PublishedBytes != n*size || st.Publishing {
		t.Errorf("publisher: Published %d PublishedBytes %d Publishing %v; want %d, %d, false", st.Published, st.PublishedBytes, st.Publishing, n, n*size)
	}
	sub.Close() // the tick-refreshed fields are final after Close
	st := sub.Stats()
	if st.Received != n || st.ReceivedBytes != n*size || st.Latency.Count != n || st.Lag != 0 || st.Joined != 0 || st.Repairing != 0 {
		t.Errorf("subscriber: Received %d ReceivedBytes %d Latency.Count %d Lag %d Joined %d Repairing %d; want %d, %d, %d, 0, 0 (ended), 0",
			st.Received, st.ReceivedBytes, st.Latency.Count, st.Lag, st.Joined, st.Repairing, n, n*size, n)
	}
	if p99 := st.Latency.Quantile(0.99); p99 <= 0 || p99 > 50*time.Second {
		t.Errorf("p99 latency %v out of any sensible range", p99)
	}
}

// TestStatsLagWhileRepairing: a late joiner that starts at the earliest
// record and cannot reach the recovery endpoint lags by what the ACK
// said was published, and counts one stream repairing.
func TestStatsLagWhileRepairing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := loopbackConfig()  // Expect 0: publishes at once
	cfg.SlowPolicy = SlowCut // no catch-up on the data connection: the late joiner repairs
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const n = 100
	for range n {
		if _, err := pub.Publish(ctx, "t", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return pub.Stats().Published == n }, "the records to reach the socket")
	stream := recovery.DefaultStreamConfig()
	stream.RepairTimeout = time.Hour
	sub, err := NewSubscriber(SubscriberConfig{
		Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), Recovery: clustertest.FreeEndpoint(t), // nobody listens
		StartAt: StartAtEarliest, Stream: stream, Handler: func(Event) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitFor(t, func() bool { st := sub.Stats(); return st.Lag == n && st.Repairing == 1 && st.Joined == 1 }, "a lag of 100 with one stream repairing")
}
