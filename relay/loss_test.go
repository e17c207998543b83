package relay

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/clustertest"
)

// TestRelayRepairsUpstreamLoss: one DATA message in twenty is lost
// between the origin and the relay. The relay repairs from the origin;
// its subscribers, which know only the relay, receive everything without
// a repair of their own; the origin serves only the relay's repairs.
func TestRelayRepairsUpstreamLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ocfg := loopbackPublisher(1)
	ocfg.MaxBatchRecords = 8 // many messages, so that many are dropped
	origin, err := coord.NewPublisher(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	proxy := clustertest.NewProxy(t, origin.Endpoint())
	var data atomic.Int64
	proxy.SetDrop(func(frames [][]byte) bool {
		if len(frames) != 3 || len(frames[1]) != envelope.HeaderSize {
			return false
		}
		h, err := envelope.ParseHeader(frames[1])
		return err == nil && h.Kind == envelope.KindData && data.Add(1)%20 == 0
	})
	r, err := New(Config{
		Upstream:   coord.SubscriberConfig{Connect: proxy.Endpoint(), Sync: origin.SyncEndpoint(), ID: "relay"},
		Downstream: loopbackPublisher(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	down := waitPublisher(t, ctx, r)
	var subs []*coord.Subscriber
	var recs []*record
	for i := range 2 {
		s, rec := subscribe(t, down, fmt.Sprintf("leaf-%d", i))
		subs, recs = append(subs, s), append(recs, rec)
	}
	if err := origin.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 20_000
	publishAndEnd(t, ctx, origin, n, done)
	for i, rec := range recs {
		<-rec.ended
		rec.mu.Lock()
		if got := rec.got["t"]; len(got) != n || len(rec.losses) != 0 {
			t.Errorf("leaf-%d got %d records, %d losses", i, len(got), len(rec.losses))
		}
		rec.mu.Unlock()
		if st := subs[i].Stats(); st.Recovered != 0 || st.Gaps != 0 {
			t.Errorf("leaf-%d repaired %d records (%d gaps); the relay should have", i, st.Recovered, st.Gaps)
		}
	}
	up := r.Subscriber().Stats()
	served := origin.Stats().Recovery.Served
	t.Logf("dropped %d of %d DATA messages upstream; the relay repaired %d records in %d requests; the origin served %d",
		proxy.Dropped.Load(), data.Load(), up.Recovered, up.RepairRequests, served)
	if proxy.Dropped.Load() == 0 || up.Recovered == 0 || served == 0 {
		t.Errorf("nothing was dropped and repaired upstream")
	}
}
