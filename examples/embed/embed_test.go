package embed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// received is what one subscriber's Handlers saw.
type received struct {
	mu     sync.Mutex
	next   map[string]uint64 // per topic, the sequence expected next
	count  int
	losses []coord.Loss
	ends   []coord.End
	errs   []string
}

func (r *received) handlers() coord.Handlers {
	r.next = map[string]uint64{}
	return coord.Handlers{
		OnMessage: func(m coord.Message) {
			r.mu.Lock()
			defer r.mu.Unlock()
			want := r.next[m.Topic] + 1
			if m.Seq != want || string(m.Payload) != fmt.Sprintf("%s-%d", m.Topic, m.Seq) {
				r.errs = append(r.errs, fmt.Sprintf("%s #%d %q, want #%d", m.Topic, m.Seq, m.Payload, want))
			}
			r.next[m.Topic] = m.Seq
			r.count++
		},
		OnLoss: func(l coord.Loss) { r.mu.Lock(); r.losses = append(r.losses, l); r.mu.Unlock() },
		OnEnd:  func(e coord.End) { r.mu.Lock(); r.ends = append(r.ends, e); r.mu.Unlock() },
	}
}

// TestTLSPublisherTwoSubscribers: a publisher on tls:// endpoints waits
// for two subscribers whose certificates it allows, one configured from
// PEM files and one from memory, publishes on two topics, and shuts
// down; both subscribers get every record in order, nothing lost, and
// their jobs end ok. A third subscriber, whose certificate names an
// identity the publisher does not allow, never joins and ends
// unreachable.
func TestTLSPublisherTwoSubscribers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca := newTestCA(t)

	pubTLS, err := coord.NewTLS(ca.issue(t, ""), ca.pool())
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"spiffe://embed.test/sub-1", "spiffe://embed.test/sub-2"}
	pcfg := coord.DefaultPublisherConfig()
	pcfg.Bind, pcfg.SyncBind, pcfg.RecoveryBind = "tls://127.0.0.1:0", "tls://127.0.0.1:0", "tls://127.0.0.1:0"
	pcfg.TLS, pcfg.Allow, pcfg.Expect = pubTLS, ids, 2
	var identified atomic.Int32
	pcfg.Wire.SlowTimeout = time.Second
	pcfg.Wire.OnEvent = func(ev coord.PeerEvent) {
		if ev.Type == coord.PeerConnected && ev.Identity != "" {
			identified.Add(1)
		}
	}
	pub, err := coord.NewPublisher(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	fromFiles, err := coord.LoadTLS(ca.writeFiles(t, ca.issue(t, ids[0])))
	if err != nil {
		t.Fatal(err)
	}
	fromMemory, err := coord.NewTLS(ca.issue(t, ids[1]), ca.pool())
	if err != nil {
		t.Fatal(err)
	}
	if err := fromFiles.Reload(); err != nil {
		t.Fatalf("Reload of a TLS loaded from files: %v", err)
	}
	if got := coord.CertIdentity(fromMemory.Leaf()); got != ids[1] {
		t.Fatalf("CertIdentity %q, want %q", got, ids[1])
	}

	var subs []*coord.Subscriber
	var recs []*received
	for _, tlsCfg := range []*coord.TLS{fromFiles, fromMemory} {
		rec := &received{}
		cfg := coord.DefaultSubscriberConfig()
		cfg.Connect, cfg.Sync = pub.Endpoint(), pub.SyncEndpoint()
		cfg.TLS = tlsCfg // the id is the certificate's identity
		cfg.Subscribe = []string{"prices."}
		cfg.Handler = rec.handlers().Handler()
		sub, err := coord.NewSubscriber(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs, recs = append(subs, sub), append(recs, rec)
	}

	stranger, err := coord.NewTLS(ca.issue(t, "spiffe://embed.test/eve"), ca.pool())
	if err != nil {
		t.Fatal(err)
	}
	scfg := coord.DefaultSubscriberConfig()
	scfg.Connect, scfg.Sync, scfg.TLS = pub.Endpoint(), pub.SyncEndpoint(), stranger
	scfg.ConnectTimeout = time.Second
	scfg.Handler = func(coord.Event) {}
	eve, err := coord.NewSubscriber(scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eve.Close()

	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	const perTopic = 500
	topics := []string{"prices.eur", "prices.usd"}
	for i := 1; i <= perTopic; i++ {
		for _, topic := range topics {
			if _, err := pub.Publish(ctx, topic, []byte(fmt.Sprintf("%s-%d", topic, i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, sub := range subs {
		select {
		case <-sub.Done():
		case <-ctx.Done():
			t.Fatalf("subscriber %s: no end", sub.ID())
		}
		if err := sub.Err(); err != nil {
			t.Errorf("subscriber %s: %v", sub.ID(), err)
		}
		rec := recs[i]
		rec.mu.Lock()
		if rec.count != perTopic*len(topics) || len(rec.errs) > 0 || len(rec.losses) > 0 || len(rec.ends) != 1 || !rec.ends[0].Completed {
			t.Errorf("subscriber %s: %d records (want %d), order errors %v, losses %v, ends %+v",
				sub.ID(), rec.count, perTopic*len(topics), rec.errs, rec.losses, rec.ends)
		}
		rec.mu.Unlock()
		if sub.ID() != ids[i] {
			t.Errorf("subscriber id %q, want its certificate's identity %q", sub.ID(), ids[i])
		}
	}

	select {
	case <-eve.Done():
	case <-ctx.Done():
		t.Fatal("the refused subscriber's job did not end")
	}
	var je *coord.JobError
	if !errors.As(eve.Err(), &je) || je.Outcome != coord.OutcomeUnreachable {
		t.Errorf("refused subscriber: %v, want outcome unreachable", eve.Err())
	}

	st := pub.Stats()
	if st.Joined != 2 || st.Wire.RefusedIdentity == 0 || identified.Load() < 2 {
		t.Errorf("publisher: joined %d (want 2), refused identities %d (want some), %d identified connections",
			st.Joined, st.Wire.RefusedIdentity, identified.Load())
	}
	t.Logf("2 subscribers over tls:// got %d records each; the stranger: %v", perTopic*len(topics), eve.Err())
}
