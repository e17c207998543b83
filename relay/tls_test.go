package relay

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/internal/testpki"
)

func tlsOf(t *testing.T, leaf testpki.Leaf, ca *testpki.CA) *coord.TLS {
	t.Helper()
	c, err := coord.NewTLS(leaf.Cert, ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tlsPublisher(expect int, c *coord.TLS) coord.PublisherConfig {
	cfg := loopbackPublisher(expect)
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tls://127.0.0.1:0", "tls://127.0.0.1:0", "tls://127.0.0.1:0"
	cfg.TLS = c
	return cfg
}

// TestRelayOverTLS: tls:// on both sides with one certificate: the
// relay's identity upstream (the origin's allow-list names it and
// nobody else) and its server certificate downstream, where subscribers
// join under their own certificates' identities.
func TestRelayOverTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca := testpki.NewCA(t, "test CA")
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	ocfg := tlsPublisher(1, tlsOf(t, ca.Server(t, "origin"), ca))
	ocfg.Allow = []string{"spiffe://test/relay"}
	origin, err := coord.NewPublisher(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	relayTLS := tlsOf(t, ca.Issue(t, testpki.Opts{URIs: []string{"spiffe://test/relay"}, IPs: loopback}), ca)
	r, err := New(Config{
		Upstream:   coord.SubscriberConfig{Connect: origin.Endpoint(), Sync: origin.SyncEndpoint(), TLS: relayTLS},
		Downstream: tlsPublisher(2, relayTLS),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	down := waitPublisher(t, ctx, r)
	var recs []*record
	for i := range 2 {
		rec := newRecord()
		id := fmt.Sprintf("spiffe://test/leaf-%d", i)
		sub, err := coord.NewSubscriber(coord.SubscriberConfig{Connect: down.Endpoint(), Sync: down.SyncEndpoint(),
			TLS: tlsOf(t, ca.Client(t, id), ca), Handler: rec.handle})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		recs = append(recs, rec)
	}
	if err := origin.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	publishAndEnd(t, ctx, origin, n, done)
	for i, rec := range recs {
		<-rec.ended
		rec.mu.Lock()
		if got := rec.got["t"]; len(got) != n || got[n-1] != n {
			t.Errorf("leaf-%d got %d records", i, len(got))
		}
		rec.mu.Unlock()
	}
}
