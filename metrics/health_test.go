package metrics

import (
	"bufio"
	"context"
	"errors"
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
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
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

// dialHeld opens n connections to addr that say nothing (or, with
// partial, the start of a request, so the server holds them in a
// request) and closes them when the test ends.
func dialHeld(t *testing.T, addr string, n int, partial bool) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if partial {
			if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		conns = append(conns, c)
	}
	return conns
}

// waitServer polls srv's stats until cond holds, for at most 30 s.
func waitServer(t *testing.T, srv *Server, what string, cond func(ServerStats) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond(srv.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, srv.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// closedByServer reports whether the server closed c (a read ends in
// EOF or a reset within 30 s).
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestServerConnectionLimit: at MaxConns a new connection closes the one
// idle the longest, counted, and is served; it is refused, counted, only
// when every open connection is in a request.
func TestServerConnectionLimit(t *testing.T) {
	srv := serveTest(t, ServerConfig{MaxConns: 2}, NewHandler(prometheus.NewRegistry(), nil))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	health := func(what string) {
		t.Helper()
		resp, err := client.Get("http://" + srv.Addr() + "/healthz")
		if err != nil {
			t.Fatalf("/healthz %s: %v", what, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz %s: %d", what, resp.StatusCode)
		}
	}
	idle := dialHeld(t, srv.Addr(), 2, false)
	waitServer(t, srv, "both connections accepted", func(st ServerStats) bool { return st.Conns == 2 })
	health("beside two idle connections")
	if !closedByServer(idle[0]) {
		t.Fatal("the connection idle the longest was not closed")
	}
	if st := srv.Stats(); st.Evicted != 1 || st.Refused != 0 {
		t.Fatalf("stats %+v: want an eviction and no refusal", st)
	}
	// A connection still sending its request headers (slowly, say) is
	// not in a request yet: it goes too, once it is the oldest.
	waitServer(t, srv, "the request's connection closed", func(st ServerStats) bool { return st.Conns == 1 })
	slow := dialHeld(t, srv.Addr(), 1, true)
	waitServer(t, srv, "the slow connection accepted", func(st ServerStats) bool { return st.Conns == 2 })
	health("beside an idle and a slow connection")
	waitServer(t, srv, "the request's connection closed", func(st ServerStats) bool { return st.Conns == 1 })
	dialHeld(t, srv.Addr(), 1, false)
	waitServer(t, srv, "a new idle connection accepted", func(st ServerStats) bool { return st.Conns == 2 })
	health("beside a slow and an idle connection")
	if !closedByServer(idle[1]) || !closedByServer(slow[0]) {
		t.Fatal("the older idle connection or the slow one was not closed")
	}

	// Every connection in a request: the new one is refused.
	release := make(chan struct{})
	var inHandler sync.WaitGroup
	inHandler.Add(2)
	srv2 := serveTest(t, ServerConfig{MaxConns: 2}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inHandler.Done()
		<-release
	}))
	var done sync.WaitGroup
	for range 2 {
		done.Add(1)
		go func() {
			defer done.Done()
			if resp, err := http.Get("http://" + srv2.Addr() + "/"); err == nil {
				resp.Body.Close()
			}
		}()
	}
	inHandler.Wait()
	extra := dialHeld(t, srv2.Addr(), 1, false)
	if !closedByServer(extra[0]) {
		t.Fatal("the connection over the limit was not closed")
	}
	if st := srv2.Stats(); st.Refused != 1 || st.Evicted != 0 {
		t.Fatalf("stats %+v: want one refusal and no eviction", st)
	}
	close(release)
	done.Wait()
}

// TestIdleConnectionsDoNotKeepScrapesOut: 64 connections fill the
// default MaxConns, 32 that never sent a byte and 32 kept alive after a
// request. /metrics and /readyz still answer at once, again and again:
// each new connection closes one idle the longest.
func TestIdleConnectionsDoNotKeepScrapesOut(t *testing.T) {
	srv := serveTest(t, DefaultServerConfig(), NewHandler(prometheus.NewRegistry(), nil))
	dialHeld(t, srv.Addr(), 32, false)
	for range 31 {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var slowest time.Duration
	for i := 0; i < 20; i++ {
		for _, path := range []string{"/metrics", "/readyz"} {
			// The attacker tops its connections up to the limit first
			// (once the server closed the last request's).
			waitServer(t, srv, "63 connections", func(st ServerStats) bool { return st.Conns == 63 })
			dialHeld(t, srv.Addr(), 1, false)
			waitServer(t, srv, "64 connections", func(st ServerStats) bool { return st.Conns == 64 })
			start := time.Now()
			resp, err := client.Get("http://" + srv.Addr() + path)
			if err != nil {
				t.Fatalf("GET %s beside 64 idle connections: %v", path, err)
			}
			resp.Body.Close()
			slowest = max(slowest, time.Since(start))
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
		}
	}
	st := srv.Stats()
	t.Logf("40 requests beside 64 idle connections: slowest %v; %d evicted, %d refused", slowest, st.Evicted, st.Refused)
	if st.Evicted < 40 || st.Refused != 0 {
		t.Errorf("stats %+v: want an eviction per request and no refusal", st)
	}
}

// TestServeLoopbackByDefault: an address without a host listens on
// loopback; every interface must be asked for, and is warned about.
func TestServeLoopbackByDefault(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	srv := serveTest(t, ServerConfig{Addr: ":0", Logger: zap.New(core)}, NewHandler(prometheus.NewRegistry(), nil))
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") || logs.Len() != 0 {
		t.Fatalf("listening on %s with %d warnings, want loopback and none", srv.Addr(), logs.Len())
	}
	srv = serveTest(t, ServerConfig{Addr: "0.0.0.0:0", Logger: zap.New(core)}, NewHandler(prometheus.NewRegistry(), nil))
	if n := logs.FilterMessageSnippet("every interface").Len(); n != 1 {
		t.Fatalf("listening on %s: %d warnings about every interface, want 1", srv.Addr(), n)
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
