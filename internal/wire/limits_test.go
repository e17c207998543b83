package wire

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// warnLog returns a logger that records warnings, and the recording.
func warnLog() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.WarnLevel)
	return zap.New(core), logs
}

// linesWith returns the recorded lines whose message contains s.
func linesWith(logs *observer.ObservedLogs, s string) []observer.LoggedEntry {
	return logs.Filter(func(e observer.LoggedEntry) bool { return strings.Contains(e.Message, s) }).All()
}

// dialN opens n TCP connections to addr.
func dialN(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		conns = append(conns, nc)
	}
	return conns
}

// TestPubMaxConnsPerIP: beyond MaxConnsPerIP connections from one
// address are closed on arrival, counted by reason and logged once per
// interval with the remote address; a connection that leaves makes room.
func TestPubMaxConnsPerIP(t *testing.T) {
	lg, logs := warnLog()
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{MaxConnsPerIP: 3, Logger: lg, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var subs []net.Conn
	for i := 0; i < 3; i++ {
		subs = append(subs, dialRawSub(t, p.Endpoint(), "t", 0))
	}
	extra := dialN(t, p.Addr().String(), 2)
	waitFor(t, 5*time.Second, "two refusals", func() bool { return p.Stats().RefusedPerIP == 2 })
	expectClosedConns(t, extra)
	lines := linesWith(logs, "too many connections from its address")
	if len(lines) != 1 || !strings.HasPrefix(lines[0].ContextMap()["remote"].(string), "127.0.0.1:") {
		t.Errorf("log lines %+v: want one with the remote address", lines)
	}
	// The server registers a peer after its side of the handshake, which
	// may come just after the client's: wait for it.
	waitFor(t, 5*time.Second, "three peers", func() bool { return p.Stats().Peers == 3 })
	if st := p.Stats(); st.Refused != 2 {
		t.Errorf("stats %+v", st)
	}
	subs[0].Close()
	waitFor(t, 5*time.Second, "the hang-up", func() bool { return len(events.of(PeerDisconnected)) == 1 })
	dialRawSub(t, p.Endpoint(), "t", 0)
	waitFor(t, 5*time.Second, "the new subscriber", func() bool { return len(events.of(PeerSubscribed)) == 4 })
}

// expectClosedConns checks that the other side closed each connection.
func expectClosedConns(t *testing.T, conns []net.Conn) {
	t.Helper()
	for i, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("connection %d still open (%v)", i, err)
		}
	}
}

// A Server at MaxConnsPerIP evicts an idle connection rather than refuse
// the new one: evict_test.go.

// TestHandshakeFailuresLogged: garbage is visible at warn level, one line
// per reason per interval however many connections send it, and counted.
func TestHandshakeFailuresLogged(t *testing.T) {
	const n = 20
	lg, logs := warnLog()
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{Logger: lg}, func(ctx context.Context, req Request, reply func(...[]byte) error) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, addr := range []string{p.Addr().String(), srv.Addr().String()} {
		for _, nc := range dialN(t, addr, n) {
			if _, err := nc.Write(garbage[0].data); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 10*time.Second, "every failure counted", func() bool {
		return p.Stats().HandshakeFailed == n && srv.Stats().HandshakeFailed == n
	})
	for _, what := range []string{"subscriber handshake failed", "client handshake failed"} {
		lines := linesWith(logs, what)
		if len(lines) != 1 || lines[0].ContextMap()["remote"] == nil {
			t.Errorf("%q: %d lines (%+v), want one with the remote address", what, len(lines), lines)
		}
	}
}

// TestServerIdleTimeout: a connection with no request for IdleTimeout is
// closed and counted; one that keeps asking stays.
func TestServerIdleTimeout(t *testing.T) {
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{IdleTimeout: 200 * time.Millisecond}, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		return reply([]byte(req.Peer.Remote))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := testCtx(t, 20*time.Second)
	c, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: 5 * time.Second, Attempts: 1})
	defer c.Close()
	if _, err := c.Request(ctx, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the idle connection closed", func() bool {
		st := srv.Stats()
		return st.IdleClosed == 1 && st.Conns == 0
	})
	if st := srv.Stats(); st.Broken() != 0 {
		t.Errorf("an idle close counted as broken: %+v", st)
	}
}

// Broken sums the counters of connections closed for a fault (test helper).
func (st ServerStats) Broken() uint64 { return st.HandshakeFailed + st.BadInput + st.HandlerErrors }

// TestClientIdleCloseRedials: a Client whose connection was idle for
// IdleClose drops it before writing, and the request goes out on a new
// connection, so it never writes into one the server closed for being
// idle. Without IdleClose (the clock not advanced), a single attempt
// written into the closed connection fails.
func TestClientIdleCloseRedials(t *testing.T) {
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{IdleTimeout: 100 * time.Millisecond}, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		return reply([]byte(req.Peer.Remote))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := testCtx(t, 20*time.Second)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	c, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: 5 * time.Second, Attempts: 1, IdleClose: time.Minute})
	defer c.Close()
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	stream := func() (string, error) {
		var from string
		err := c.Stream(ctx, [][]byte{[]byte("x")}, func(reply [][]byte) (bool, error) {
			from = string(reply[0])
			return true, nil
		})
		return from, err
	}
	first, err := stream()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the server to close the idle connection", func() bool { return srv.Stats().IdleClosed == 1 })
	mu.Lock()
	now = now.Add(time.Minute) // IdleClose has passed
	mu.Unlock()
	second, err := stream()
	if err != nil {
		t.Fatalf("after IdleClose: %v", err)
	}
	if first == second {
		t.Errorf("both requests came from %s: the idle connection was reused", first)
	}
	// The same without IdleClose passing: the request goes into the
	// connection the server closed meanwhile.
	waitFor(t, 10*time.Second, "the server to close the idle connection", func() bool { return srv.Stats().IdleClosed == 2 })
	if _, err := stream(); err == nil {
		t.Error("a request written into a connection the server closed succeeded; the test proves nothing")
	}
}

// TestClientCloseReleasesRequest: Close releases a Request blocked on a
// reply with ErrClosed, waits for it, and later requests fail likewise.
func TestClientCloseReleasesRequest(t *testing.T) {
	entered := make(chan struct{})
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{}, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := c.Request(context.Background(), [][]byte{[]byte("x")})
		done <- err
	}()
	<-entered
	c.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Request returned %v, want ErrClosed", err)
	}
	if _, err := c.Request(context.Background(), [][]byte{[]byte("x")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Request after Close: %v, want ErrClosed", err)
	}
	c.Close() // idempotent
}
