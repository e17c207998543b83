package coord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/syncmq/syncmq/internal/testpki"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/proto/handshake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// testTLS makes a TLS that presents leaf and verifies peers
// against ca.
func testTLS(t testing.TB, leaf testpki.Leaf, ca *testpki.CA) *TLS {
	t.Helper()
	c, err := NewTLS(leaf.Cert, ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsConfig is loopbackConfig with every endpoint on tls:// and the
// publisher's certificate from ca.
func tlsConfig(t testing.TB, ca *testpki.CA) PublisherConfig {
	cfg := loopbackConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tls://127.0.0.1:0", "tls://127.0.0.1:0", "tls://127.0.0.1:0"
	cfg.TLS = testTLS(t, ca.Server(t, "publisher"), ca)
	return cfg
}

// TestTLSQuorum is the acceptance test of tls://: subscribers with no
// certificate, one from another CA, an expired one, one whose identity
// the allow-list does not name, or no TLS at all are refused and never
// counted; three subscribers with valid certificates, whose ids default
// to their certificates' identities, make the quorum and receive
// everything.
func TestTLSQuorum(t *testing.T) {
	const n = 20_000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "another CA")
	good := []string{"spiffe://test/sub-1", "spiffe://test/sub-2", "sub-3.test"}
	pub := testPublisher(t, func(c *PublisherConfig) {
		*c = tlsConfig(t, ca)
		c.HeartbeatInterval = 100 * time.Millisecond
		c.Expect = len(good)
		c.Allow = good
	})
	if !strings.HasPrefix(pub.RecoveryEndpoint(), "tls://") {
		t.Fatalf("recovery endpoint %q", pub.RecoveryEndpoint())
	}
	if _, err := NewSubscriber(SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), Handler: func(Event) {}}); err == nil ||
		!strings.Contains(err.Error(), "needs TLS") {
		t.Fatalf("a subscriber without TLS on tls:// endpoints: %v", err)
	}

	expired := ca.Issue(t, testpki.Opts{URIs: []string{"spiffe://test/sub-1"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	bad := map[string]SubscriberConfig{
		"another CA":  {TLS: testTLS(t, other.Client(t, "spiffe://test/sub-2"), ca)},
		"expired":     {TLS: testTLS(t, expired, ca)},
		"not allowed": {TLS: testTLS(t, ca.Client(t, "spiffe://test/eve"), ca)},
		"plaintext": {
			Connect: strings.Replace(pub.Endpoint(), "tls://", "tcp://", 1),
			Sync:    strings.Replace(pub.SyncEndpoint(), "tls://", "tcp://", 1), ID: "sub-3.test",
		},
	}
	badRecs := map[string]*recorder{}
	for name, cfg := range bad {
		if cfg.Connect == "" {
			cfg.Connect, cfg.Sync = pub.Endpoint(), pub.SyncEndpoint()
		}
		cfg.HandshakeTimeout = 500 * time.Millisecond
		badRecs[name] = newRecorder(0)
		testSubscriber(t, cfg, badRecs[name])
	}
	waitFor(t, func() bool {
		w := pub.Stats().Wire
		return w.TLSFailed >= 3 && w.RefusedIdentity >= 1
	}, "the bad subscribers refused")
	if st := pub.Stats(); st.Joined != 0 || st.Live != 0 || st.Publishing || st.Wire.Peers != 0 {
		t.Fatalf("after the bad subscribers: joined %d, live %d, publishing %v, %d data connections", st.Joined, st.Live, st.Publishing, st.Wire.Peers)
	}

	recs := make([]*recorder, len(good))
	for i, id := range good {
		recs[i] = newRecorder(n)
		s := testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), TLS: testTLS(t, ca.Client(t, id), ca)}, recs[i])
		if s.ID() != id {
			t.Errorf("subscriber id %q, want its certificate's identity %q", s.ID(), id)
		}
	}
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, "update", 0, n, []byte("Rhubarb!"))
	for i, r := range recs {
		r.wait(t, ctx, good[i])
		r.check(t, good[i], n)
	}
	for name, r := range badRecs {
		if got, _, _, _ := r.snapshot(); got != 0 || r.joined != 0 {
			t.Errorf("%s: received %d, joined %d", name, got, r.joined)
		}
	}
	st := pub.Stats()
	if st.Joined != len(good) {
		t.Errorf("joined %d, want %d", st.Joined, len(good))
	}
	t.Logf("refusals: wire %+v, sync %v", st.Wire, st.Refused)
}

// TestTLSReadyUnderAnotherIdentity: a subscriber with a valid certificate
// cannot join, count or say BYE under another subscriber's id; the
// refusals carry code forbidden and are counted.
func TestTLSReadyUnderAnotherIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca := testpki.NewCA(t, "test CA")
	pub := testPublisher(t, func(c *PublisherConfig) {
		*c = tlsConfig(t, ca)
		c.Expect = 2
	})
	alice := newRecorder(0)
	sub := testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), TLS: testTLS(t, ca.Client(t, "alice"), ca)}, alice)
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	mallory, err := wire.NewClient(pub.SyncEndpoint(), wire.ClientConfig{Timeout: 5 * time.Second, Attempts: 1, TLS: testTLS(t, ca.Client(t, "mallory"), ca).wireTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer mallory.Close()
	for _, typ := range []string{handshake.TypeReady, handshake.TypeBye} {
		req := handshake.Encode(handshake.Ready{V: handshake.Version, Type: typ, Subscriber: "alice",
			Publisher: pub.ID().String(), Epoch: pub.Epoch(), Nonce: strings.Repeat("ab", 16)})
		reply, err := mallory.Request(ctx, [][]byte{req})
		if err != nil {
			t.Fatal(err)
		}
		var refused *handshake.ErrorReply
		if _, err := handshake.DecodeReply(reply[0]); !errors.As(err, &refused) || refused.Code != handshake.CodeForbidden {
			t.Errorf("%s as alice from mallory: %s, want forbidden", typ, reply[0])
		}
	}
	st := pub.Stats()
	if st.Refused[handshake.CodeForbidden] != 2 || st.Joined != 1 || st.Live != 1 {
		t.Errorf("refused %v, joined %d, live %d", st.Refused, st.Joined, st.Live)
	}
	pub.mu.Lock()
	waiting := pub.core.endState(pub.now()).waiting
	pub.mu.Unlock()
	if len(waiting) != 1 {
		t.Errorf("mallory said bye for alice: waiting for %v", waiting)
	}
}

// TestTLSFetchRefused: the recovery endpoint refuses a FETCH without a
// certificate the CA signed at the TLS layer, and one whose identity the
// allow-list does not name with an ERROR forbidden; an allowed identity
// gets its records.
func TestTLSFetchRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "another CA")
	pub := testPublisher(t, func(c *PublisherConfig) {
		*c = tlsConfig(t, ca)
		c.Expect = 0
		c.Allow = []string{"alice"}
	})
	publishN(t, pub, "t", 0, 10, []byte("x"))
	waitFor(t, func() bool { return pub.Stats().Published == 10 }, "the records sent")
	req := fetch.EncodeRequest(nil, fetch.Request{ID: 7, Publisher: pub.ID(), Epoch: pub.Epoch(), Topic: "t", From: 1, To: 10})
	fetchAs := func(leaf testpki.Leaf) ([][]byte, error) {
		c, err := wire.NewClient(pub.RecoveryEndpoint(), wire.ClientConfig{Type: zmq4.Dealer, Timeout: 2 * time.Second, Attempts: 1, TLS: testTLS(t, leaf, ca).wireTLS()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var replies [][]byte
		err = c.Stream(ctx, [][]byte{req}, func(reply [][]byte) (bool, error) {
			r, err := fetch.DecodeResponse(reply)
			if err != nil {
				return true, err
			}
			replies = append(replies, []byte(fmt.Sprintf("%v:%v", r.Type, r.Error.Code)))
			return r.Type != fetch.TypeReplay, nil
		})
		return replies, err
	}
	if _, err := fetchAs(other.Client(t, "alice")); err == nil {
		t.Error("a FETCH with another CA's certificate was answered")
	}
	replies, err := fetchAs(ca.Client(t, "bob"))
	if err != nil || len(replies) != 1 || string(replies[0]) != fmt.Sprintf("%v:%v", fetch.TypeError, fetch.CodeForbidden) {
		t.Errorf("bob's FETCH: %q, %v; want one ERROR forbidden", replies, err)
	}
	replies, err = fetchAs(ca.Client(t, "alice"))
	if err != nil || len(replies) < 2 || !strings.HasPrefix(string(replies[len(replies)-1]), fetch.TypeDone.String()) {
		t.Errorf("alice's FETCH: %q, %v; want REPLAYs and a DONE", replies, err)
	}
	st := pub.Stats()
	if st.Recovery.Forbidden != 1 || st.RecoveryWire.TLSFailed != 1 {
		t.Errorf("recovery %+v, wire %+v", st.Recovery, st.RecoveryWire)
	}
}

// TestTLSConfigValidation: TLS secures every endpoint or none, and an
// allow-list needs it; a subscriber id must be its certificate's identity.
func TestTLSConfigValidation(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	mixed := tlsConfig(t, ca)
	mixed.SyncBind = "tcp://127.0.0.1:0"
	plainAllow := loopbackConfig()
	plainAllow.Allow = []string{"alice"}
	noTLS := loopbackConfig()
	noTLS.Bind = "tls://127.0.0.1:0"
	for name, cfg := range map[string]PublisherConfig{"mixed": mixed, "allow without TLS": plainAllow, "tls:// without TLS": noTLS} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	sub := SubscriberConfig{Connect: "tls://127.0.0.1:1", Sync: "tls://127.0.0.1:2", ID: "bob", TLS: testTLS(t, ca.Client(t, "alice"), ca), Handler: func(Event) {}}
	if err := sub.Validate(); err == nil || !strings.Contains(err.Error(), "identity") {
		t.Errorf("an id that is not the certificate's: %v", err)
	}
	sub.ID = ""
	if err := sub.Validate(); err != nil {
		t.Errorf("the certificate's identity as id: %v", err)
	}
	if got := recoveryEndpoint("", "tls://*:5563", "tls://pubhost:5561"); got != "tls://pubhost:5563" {
		t.Errorf("recovery endpoint from a tls:// ACK: %q", got)
	}
}

// TestTLSClusterDiscovery: a publisher with TLS advertises tls://
// endpoints in gossip; subscribers that know only the gossip seed find
// it, join under their certificates' identities (which are also their
// member ids) and make its membership quorum.
func TestTLSClusterDiscovery(t *testing.T) {
	const subs, count = 2, 2_000
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca := testpki.NewCA(t, "test CA")
	cfg := tlsConfig(t, ca)
	cfg.Gossip = gossipConfig("pub")
	cfg.Quorum, cfg.Settle = QuorumRule{Kind: QuorumAll}, 500*time.Millisecond
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Shutdown(context.Background()) })
	recs := make([]*recorder, subs)
	for i := range recs {
		recs[i] = newRecorder(count)
		id := fmt.Sprintf("spiffe://test/sub-%d", i)
		s := testSubscriber(t, SubscriberConfig{Gossip: gossipConfig("", pub.GossipAddr()), TLS: testTLS(t, ca.Client(t, id), ca)}, recs[i])
		if s.ID() != id {
			t.Fatalf("subscriber id %q, want %q", s.ID(), id)
		}
	}
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.Live != subs {
		t.Fatalf("live %d, want %d", st.Live, subs)
	}
	publishN(t, pub, "update", 0, count, []byte("Rhubarb!"))
	for i, r := range recs {
		r.wait(t, ctx, fmt.Sprint("subscriber ", i))
		r.check(t, fmt.Sprint("subscriber ", i), count)
	}
}

// TestExposureWarning: a publisher without TLS logs one warning naming
// the endpoints it binds beyond loopback; one on loopback, or with TLS,
// logs none.
func TestExposureWarning(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	for _, tc := range []struct {
		name string
		mod  func(*PublisherConfig)
		want int
	}{
		{"loopback", func(*PublisherConfig) {}, 0},
		{"wildcard data endpoint", func(c *PublisherConfig) { c.Bind = "tcp://*:0" }, 1},
		{"tls", func(c *PublisherConfig) { *c = tlsConfig(t, ca); c.Bind = "tls://*:0" }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			cfg := loopbackConfig()
			tc.mod(&cfg)
			cfg.Logger = zap.New(core)
			p, err := NewPublisher(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
			got := logs.FilterMessageSnippet("beyond loopback without TLS").All()
			if len(got) != tc.want {
				t.Fatalf("%d warnings, want %d: %v", len(got), tc.want, logs.All())
			}
			if tc.want == 1 {
				if addrs := got[0].ContextMap()["addresses"]; fmt.Sprint(addrs) != fmt.Sprintf("[%s]", p.pub.Addr()) {
					t.Errorf("addresses %v, want the data endpoint %s only", addrs, p.pub.Addr())
				}
			}
		})
	}
}
