package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/syncmq/syncmq/internal/testpki"
)

func mustTLS(t testing.TB, leaf testpki.Leaf, roots *x509.CertPool) *TLS {
	t.Helper()
	c, err := NewTLS(leaf.Cert, roots)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialTLSSub is dialRawSub over TLS: the connection is handshaked (TLS
// with cfg's certificate, then ZMTP as a SUB) and subscribed to prefix.
func dialTLSSub(t testing.TB, endpoint string, cfg *TLS, prefix string) (net.Conn, error) {
	t.Helper()
	tg, err := newTarget(endpoint, cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.DialTimeout("tcp", tg.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := tg.secure(ctx, raw)
	if err != nil {
		return nil, err
	}
	if _, err := handshake(nc, zmq4.Sub, nil, false, 5*time.Second); err != nil {
		return nil, explainTLS(err)
	}
	subscribeRaw(t, nc, prefix)
	return nc, nil
}

// TestTLSPubSub: a subscriber with a certificate the CA signed connects
// to a tls:// Pub, its events carry the identity of its certificate, it
// receives every message in order, and Shutdown's orderly end (TLS
// close_notify, then FIN) reaches it after the last one.
func TestTLSPubSub(t *testing.T) {
	const n = 2000
	ctx := testCtx(t, 30*time.Second)
	ca := testpki.NewCA(t, "test CA")
	var events eventLog
	p, err := Listen("tls://127.0.0.1:0", PubConfig{TLS: mustTLS(t, ca.Server(t, "publisher"), ca.Pool()), OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !strings.HasPrefix(p.Endpoint(), "tls://") {
		t.Fatalf("Endpoint %q", p.Endpoint())
	}
	sub := NewSub(SubConfig{TLS: mustTLS(t, ca.Client(t, "spiffe://test/sub-a"), ca.Pool())}, "t")
	defer sub.Close()
	if err := sub.Connect(p.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("got %+v, %v", d, err)
	}
	waitFor(t, 5*time.Second, "the subscription", func() bool { return len(events.of(PeerSubscribed)) == 1 })
	for _, ev := range append(events.of(PeerConnected), events.of(PeerSubscribed)...) {
		if ev.Identity != "spiffe://test/sub-a" {
			t.Errorf("%v event identity %q", ev.Type, ev.Identity)
		}
	}
	for i := 0; i < n; i++ {
		if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), seqPayload(nil, uint64(i), 100+i%3000)}}); err != nil {
			t.Fatal(err)
		}
	}
	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(ctx, func(ConnID) bool { return true }) }()
	for i := 0; i < n; i++ {
		d, err := sub.Recv(ctx)
		if err != nil || d.Kind != Message {
			t.Fatalf("message %d: %+v, %v", i, d, err)
		}
		if seq, ok := checkSeq(d.Frames[1]); !ok || seq != uint64(i) {
			t.Fatalf("message %d: seq %d, intact %v", i, seq, ok)
		}
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Disconnected {
		t.Fatalf("after the last message: %+v, %v", d, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := events.of(PeerDisconnected); len(d) != 1 || d[0].Err != nil || d[0].Dropped != 0 {
		t.Errorf("disconnects %+v: want one orderly, nothing dropped", d)
	}
	if st := p.Stats(); st.TLSFailed != 0 || st.HandshakeFailed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestTLSRefusals: connections without a certificate, with one from
// another CA, with an expired one, or without TLS at all are refused in
// the TLS handshake: counted, never reported connected, and the Pub keeps
// serving a good subscriber meanwhile.
func TestTLSRefusals(t *testing.T) {
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "another CA")
	var events eventLog
	p, err := Listen("tls://127.0.0.1:0", PubConfig{TLS: mustTLS(t, ca.Server(t, "publisher"), ca.Pool()), OnEvent: events.add, HandshakeTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, port, _ := net.SplitHostPort(p.Addr().String())
	expired := ca.Issue(t, testpki.Opts{CommonName: "old", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	for _, tc := range []struct {
		name string
		dial func() error
	}{
		{"another CA", func() error {
			_, err := dialTLSSub(t, p.Endpoint(), mustTLS(t, other.Client(t, "mallory"), ca.Pool()), "t")
			return err
		}},
		{"expired", func() error {
			_, err := dialTLSSub(t, p.Endpoint(), mustTLS(t, expired, ca.Pool()), "t")
			return err
		}},
		{"no certificate", func() error {
			raw, err := net.Dial("tcp", p.Addr().String())
			if err != nil {
				return err
			}
			defer raw.Close()
			tc := tls.Client(raw, &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
			if err := tc.Handshake(); err != nil {
				return err
			}
			_, err = handshake(tc, zmq4.Sub, nil, false, 5*time.Second)
			return explainTLS(err)
		}},
		{"plaintext ZMTP", func() error {
			raw, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
			if err != nil {
				return err
			}
			defer raw.Close()
			_, err = handshake(raw, zmq4.Sub, nil, false, 5*time.Second)
			return err
		}},
		{"garbage", func() error {
			raw, err := net.Dial("tcp", p.Addr().String())
			if err != nil {
				return err
			}
			defer raw.Close()
			if _, err := raw.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
				return err
			}
			raw.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = raw.Read(make([]byte, 64))
			for err == nil {
				_, err = raw.Read(make([]byte, 64))
			}
			if isTimeout(err) {
				return nil // not closed: that is the failure
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.Stats().TLSFailed
			if err := tc.dial(); err == nil {
				t.Fatal("the connection was not refused")
			} else {
				t.Logf("client saw: %v", err)
			}
			waitFor(t, 5*time.Second, "the refusal counted", func() bool { return p.Stats().TLSFailed > before })
		})
	}
	good, err := dialTLSSub(t, p.Endpoint(), mustTLS(t, ca.Client(t, "good"), ca.Pool()), "t")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the good subscriber", func() bool { return len(events.of(PeerSubscribed)) == 1 })
	if c := events.of(PeerConnected); len(c) != 1 || c[0].Identity != "good" {
		t.Errorf("connected %+v: want the good subscriber only", c)
	}
	if err := p.Send(testCtx(t, 5*time.Second), &Msg{Frames: [][]byte{[]byte("t"), []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	good.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _ := countMessages(good, func(int) { good.SetReadDeadline(time.Now()) }); n != 1 {
		t.Errorf("good subscriber got %d messages", n)
	}
}

// TestTLSAllow: a peer whose identity Allow refuses fails the TLS
// handshake (it gets a bad_certificate alert), is counted and never
// reported connected; one it allows is served.
func TestTLSAllow(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	var events eventLog
	p, err := Listen("tls://127.0.0.1:0", PubConfig{
		TLS:     mustTLS(t, ca.Server(t, "publisher"), ca.Pool()),
		OnEvent: events.add,
		Allow:   func(id string) bool { return id == "alice" },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = dialTLSSub(t, p.Endpoint(), mustTLS(t, ca.Client(t, "bob"), ca.Pool()), "t")
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("bob got %v, want the TLS handshake refused", err)
	}
	waitFor(t, 5*time.Second, "bob refused", func() bool { return p.Stats().RefusedIdentity == 1 })
	if _, err := dialTLSSub(t, p.Endpoint(), mustTLS(t, ca.Client(t, "alice"), ca.Pool()), "t"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "alice subscribed", func() bool { return len(events.of(PeerSubscribed)) == 1 })
	if c := events.of(PeerConnected); len(c) != 1 || c[0].Identity != "alice" {
		t.Errorf("connected %+v: want alice only", c)
	}
}

// TestTLSServerIdentity: a request on a tls:// Server carries the
// identity of the client's certificate; a client whose certificate the
// server refuses gets an error that says so.
func TestTLSServerIdentity(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "another CA")
	srv, err := Serve("tls://127.0.0.1:0", ServerConfig{TLS: mustTLS(t, ca.Server(t, "publisher"), ca.Pool())},
		func(_ context.Context, req Request, reply func(...[]byte) error) error {
			return reply([]byte(req.Peer.Identity))
		})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, typ := range []zmq4.SocketType{zmq4.Req, zmq4.Dealer} {
		c, err := NewClient(srv.Endpoint(), ClientConfig{Type: typ, Timeout: 5 * time.Second, TLS: mustTLS(t, ca.Client(t, "spiffe://test/a"), ca.Pool())})
		if err != nil {
			t.Fatal(err)
		}
		reply, err := c.Request(ctx, [][]byte{[]byte("who am I")})
		c.Close()
		if err != nil || len(reply) != 1 || string(reply[0]) != "spiffe://test/a" {
			t.Errorf("%s: reply %q, %v", typ, reply, err)
		}
	}
	bad, err := NewClient(srv.Endpoint(), ClientConfig{Timeout: 2 * time.Second, Attempts: 1, TLS: mustTLS(t, other.Client(t, "mallory"), ca.Pool())})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Request(ctx, [][]byte{[]byte("hello")})
	if err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("a client from another CA got %v, want a TLS error", err)
	}
	t.Logf("refused client saw: %v", err)
	plain, err := NewClient(strings.Replace(srv.Endpoint(), "tls://", "tcp://", 1), ClientConfig{Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Request(ctx, [][]byte{[]byte("hello")}); err == nil {
		t.Error("a plaintext client got a reply from a tls:// server")
	}
	waitFor(t, 5*time.Second, "both refusals counted", func() bool { return srv.Stats().TLSFailed == 2 })
	if st := srv.Stats(); st.Requests != 2 {
		t.Errorf("requests %d, want only the two with a good certificate", st.Requests)
	}
}

// TestTLSReloadKeepsConnections: after Reload swaps in a certificate of a
// new CA, the subscriber connected before keeps receiving, a subscriber
// with the old CA's certificate is refused and one with the new CA's is
// served. A Reload of broken files keeps the configuration in force.
func TestTLSReloadKeepsConnections(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	dir := t.TempDir()
	ca1, ca2 := testpki.NewCA(t, "CA one"), testpki.NewCA(t, "CA two")
	certFile, keyFile := ca1.Server(t, "publisher").WriteFiles(t, dir, "pub")
	caFile := ca1.WriteFile(t, dir, "ca.pem")
	srvTLS, err := LoadTLS(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	var events eventLog
	p, err := Listen("tls://127.0.0.1:0", PubConfig{TLS: srvTLS, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	old := NewSub(SubConfig{TLS: mustTLS(t, ca1.Client(t, "old"), ca1.Pool())}, "t")
	defer old.Close()
	if err := old.Connect(p.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if d, err := old.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("got %+v, %v", d, err)
	}
	waitFor(t, 5*time.Second, "the old subscription", func() bool { return len(events.of(PeerSubscribed)) == 1 })

	ca2.Server(t, "publisher").WriteFiles(t, dir, "pub")
	ca2.WriteFile(t, dir, "ca.pem")
	if err := srvTLS.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLSSub(t, p.Endpoint(), mustTLS(t, ca1.Client(t, "stale"), ca1.Pool()), "t"); err == nil {
		t.Error("a subscriber of the old CA was served after the reload")
	}
	if _, err := dialTLSSub(t, p.Endpoint(), mustTLS(t, ca2.Client(t, "new"), ca2.Pool()), "t"); err != nil {
		t.Fatalf("a subscriber of the new CA: %v", err)
	}
	waitFor(t, 5*time.Second, "the new subscription", func() bool { return len(events.of(PeerSubscribed)) == 2 })
	if err := p.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), []byte("after the reload")}}); err != nil {
		t.Fatal(err)
	}
	if d, err := old.Recv(ctx); err != nil || d.Kind != Message || string(d.Frames[1]) != "after the reload" {
		t.Fatalf("the subscriber connected before the reload got %+v, %v", d, err)
	}
	if d := events.of(PeerDisconnected); len(d) != 0 {
		t.Errorf("disconnects %+v: the reload dropped a connection", d)
	}

	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srvTLS.Reload(); err == nil {
		t.Error("Reload of a broken certificate succeeded")
	}
	if _, err := dialTLSSub(t, p.Endpoint(), mustTLS(t, ca2.Client(t, "newer"), ca2.Pool()), "t"); err != nil {
		t.Fatalf("after a failed Reload: %v", err)
	}
	if err := mustTLS(t, ca1.Client(t, "x"), ca1.Pool()).Reload(); err == nil {
		t.Error("Reload of a TLS made by NewTLS succeeded")
	}
}

// TestTLSEndpointScheme: tls:// needs a TLS configuration and tcp://
// refuses one on the binding side; a dialer uses it for tls:// only.
func TestTLSEndpointScheme(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	cfg := mustTLS(t, ca.Server(t, "publisher"), ca.Pool())
	if _, err := Listen("tls://127.0.0.1:0", PubConfig{}); !errors.Is(err, ErrBadEndpoint) {
		t.Errorf("Listen tls:// without TLS: %v", err)
	}
	if _, err := Listen("tcp://127.0.0.1:0", PubConfig{TLS: cfg}); !errors.Is(err, ErrBadEndpoint) {
		t.Errorf("Listen tcp:// with TLS: %v", err)
	}
	if _, err := Serve("tls://127.0.0.1:0", ServerConfig{}, nil); !errors.Is(err, ErrBadEndpoint) {
		t.Errorf("Serve tls:// without TLS: %v", err)
	}
	if _, err := NewClient("tls://127.0.0.1:1", ClientConfig{}); !errors.Is(err, ErrBadEndpoint) {
		t.Errorf("NewClient tls:// without TLS: %v", err)
	}
	sub := NewSub(SubConfig{}, "t")
	defer sub.Close()
	if err := sub.Connect("tls://127.0.0.1:1"); !errors.Is(err, ErrBadEndpoint) {
		t.Errorf("Connect tls:// without TLS: %v", err)
	}
	if _, err := NewClient("tcp://127.0.0.1:1", ClientConfig{TLS: cfg}); err != nil {
		t.Errorf("NewClient tcp:// with TLS: %v", err)
	}
	for ep, want := range map[string]string{"tls://*:5561": ":5561", "tcp://h:1": "h:1", "udp://h:1": "", "tls://h": ""} {
		scheme, addr, err := ParseEndpoint(ep)
		if (err == nil) != (want != "") || addr != want {
			t.Errorf("ParseEndpoint(%q) = %q, %q, %v", ep, scheme, addr, err)
		}
	}
}

// TestCertIdentity: a URI SAN wins over a DNS SAN, which wins over the
// common name.
func TestCertIdentity(t *testing.T) {
	u, _ := url.Parse("spiffe://example.org/sub/a")
	for _, tc := range []struct {
		cert x509.Certificate
		want string
	}{
		{x509.Certificate{URIs: []*url.URL{u}, DNSNames: []string{"a.example.org"}}, "spiffe://example.org/sub/a"},
		{x509.Certificate{DNSNames: []string{"a.example.org", "b"}}, "a.example.org"},
		{x509.Certificate{}, ""},
	} {
		tc.cert.Subject.CommonName = "cn"
		if tc.want == "" {
			tc.want = "cn"
		}
		if got := CertIdentity(&tc.cert); got != tc.want {
			t.Errorf("CertIdentity = %q, want %q", got, tc.want)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxIdentity+1), "a\nb", "\xff"} {
		if checkIdentity(bad) == nil {
			t.Errorf("identity %q accepted", bad)
		}
	}
}
