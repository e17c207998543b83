package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/journal"
)

func TestPublisherReady(t *testing.T) {
	for _, c := range []struct {
		st    coord.PublisherStats
		ready bool
		why   string
	}{
		{coord.PublisherStats{Live: 1, Need: 3}, false, "waiting for the quorum: 1 of 3 subscribers"},
		{coord.PublisherStats{Quorum: true, Publishing: true, Live: 3, Need: 3}, true, "publishing: quorum 3 of 3 subscribers"},
		{coord.PublisherStats{Quorum: true, Publishing: true, Live: 1, Need: 3}, true, "publishing with 1 of 3 subscribers (quorum timeout, policy proceed)"},
		{coord.PublisherStats{Quorum: true, Publishing: true, QuorumLost: true, Live: 1, Need: 2}, false, "quorum lost: 1 of 2 subscribers"},
		{coord.PublisherStats{Quorum: true, Live: 3, Need: 3}, false, "not publishing: shutting down"},
		{coord.PublisherStats{Quorum: true, Publishing: true, Live: 3, Need: 3, KeepFailing: true}, false,
			"publishing stalled: the journal cannot store batches (is its disk full?); they wait, nothing is sent"},
		{coord.PublisherStats{Quorum: true, Publishing: true, Live: 3, Need: 3, Journal: journal.Stats{Failed: true}}, false,
			"not publishing: the journal failed and refuses batches until the publisher restarts"},
	} {
		ready, why := PublisherReady(c.st)
		if ready != c.ready || why != c.why {
			t.Errorf("%+v: got %v %q, want %v %q", c.st, ready, why, c.ready, c.why)
		}
	}
}

func TestSubscriberReady(t *testing.T) {
	for _, c := range []struct {
		st    coord.SubscriberStats
		ready bool
		why   string
	}{
		{coord.SubscriberStats{}, false, "not joined: no sync handshake completed yet"},
		{coord.SubscriberStats{Handshakes: 1, Connected: 1}, false, "no publisher joined: every publisher ended or is gone"},
		{coord.SubscriberStats{Handshakes: 1, Joined: 1}, false, "disconnected from every publisher; reconnecting"},
		{coord.SubscriberStats{Handshakes: 1, Joined: 1, Connected: 1, Repairing: 2, Lag: 40}, false, "catching up: 2 streams repairing, 40 messages behind"},
		{coord.SubscriberStats{Handshakes: 1, Joined: 2, Connected: 2}, true, "joined 2 publishers, caught up"},
		{coord.SubscriberStats{Handshakes: 1, Joined: 1, Connected: 1}, true, "joined 1 publisher, caught up"},
	} {
		ready, why := SubscriberReady(c.st)
		if ready != c.ready || why != c.why {
			t.Errorf("%+v: got %v %q, want %v %q", c.st, ready, why, c.ready, c.why)
		}
	}
}

// get fetches path from the server and returns the status and body.
func get(t testing.TB, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

func serveTest(t testing.TB, cfg ServerConfig, h http.Handler) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	srv, err := Serve(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestHandlerEndpoints: /healthz is always 200, /readyz follows the
// Readiness with its reason as the body, /metrics serves the registry,
// other paths are 404 and other methods 405.
func TestHandlerEndpoints(t *testing.T) {
	var mu sync.Mutex
	ready, why := false, "waiting"
	readiness := func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return ready, why
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "syncmq_test_total", Help: "A test counter."}, func() float64 { return 7 }))
	srv := serveTest(t, DefaultServerConfig(), NewHandler(reg, readiness))
	if code, body := get(t, srv.Addr(), "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, srv.Addr(), "/readyz"); code != 503 || body != "waiting\n" {
		t.Errorf("/readyz not ready: %d %q", code, body)
	}
	mu.Lock()
	ready, why = true, "publishing"
	mu.Unlock()
	if code, body := get(t, srv.Addr(), "/readyz"); code != 200 || body != "publishing\n" {
		t.Errorf("/readyz ready: %d %q", code, body)
	}
	if code, body := get(t, srv.Addr(), "/metrics"); code != 200 || !strings.Contains(body, "syncmq_test_total 7") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, _ := get(t, srv.Addr(), "/nothing"); code != 404 {
		t.Errorf("/nothing: %d, want 404", code)
	}
	resp, err := http.Post("http://"+srv.Addr()+"/readyz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST /readyz: %d, want 405", resp.StatusCode)
	}
}

// TestServerConnectionLimit: beyond MaxConns a new connection is closed
// on arrival and counted; the server keeps serving the others.
func TestServerConnectionLimit(t *testing.T) {
	srv := serveTest(t, ServerConfig{MaxConns: 2}, NewHandler(prometheus.NewRegistry(), nil))
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Stats().Conns < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the server never accepted both connections: %+v", srv.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	extra, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the connection over the limit was not closed (read %d bytes)", n)
	}
	if st := srv.Stats(); st.Refused != 1 {
		t.Fatalf("Refused %d, want 1", st.Refused)
	}
	held[0].Close()
	held = held[1:]
	for srv.Stats().Conns > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection is still counted: %+v", srv.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if code, _ := get(t, srv.Addr(), "/healthz"); code != 200 {
		t.Fatalf("/healthz after the refusal: %d", code)
	}
}

// TestServerLifecycle: Shutdown and Close are idempotent, return the
// first result, and the address is released.
func TestServerLifecycle(t *testing.T) {
	srv, err := Serve(ServerConfig{Addr: "127.0.0.1:0"}, NewHandler(prometheus.NewRegistry(), nil))
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still listening after Shutdown")
	}
	if _, err := Serve(ServerConfig{Addr: "no-port"}, nil); err == nil {
		t.Fatal("Serve accepted an address without a port")
	}
}

func TestServerConfigValidate(t *testing.T) {
	for _, c := range []ServerConfig{{Addr: ""}, {Addr: "127.0.0.1"}, {Addr: "127.0.0.1:0", MaxConns: -1},
		{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Nanosecond}, {Addr: "127.0.0.1:0", WriteTimeout: time.Millisecond},
		{Addr: "127.0.0.1:0", IdleTimeout: MinServerTimeout - 1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (ServerConfig{Addr: ":9100"}).Validate(); err != nil {
		t.Errorf(":9100: %v", err)
	}
}
