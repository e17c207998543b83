package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// The whole of 127.0.0.0/8 is loopback on Linux, so a test can open
// connections from many source addresses: the attacker and the honest
// client may or may not share one.

// dialFrom opens a TCP connection to addr from source address src
// ("127.0.0.2"; "" lets the OS choose).
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// dialDealer opens a connection from src that completes the ZMTP
// handshake as a DEALER and then sends nothing: a handshaked idle client.
func dialDealer(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	nc := dialFrom(t, src, addr)
	if _, err := handshake(nc, zmq4.Dealer, nil, false, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return nc
}

// askRaw sends one request on a handshaked DEALER connection and reads
// the one-frame reply.
func askRaw(t testing.TB, nc net.Conn, body string) string {
	t.Helper()
	if _, err := nc.Write(appendMsg(nil, [][]byte{[]byte(body)})); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(nc, 4096, 1<<20, 8)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	frames, _, err := fr.readMsg(nil)
	if err != nil || len(frames) != 1 {
		t.Fatalf("reply: %v %q", err, frames)
	}
	return string(frames[0])
}

// isOpen reports whether the other side still holds nc: a read that
// times out means open, EOF or a reset means closed. It waits up to d
// for a close to arrive.
func isOpen(nc net.Conn, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	_, err := nc.Read(make([]byte, 1))
	return err != nil && isTimeout(err)
}

func echoServerCfg(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	srv, err := Serve("tcp://127.0.0.1:0", cfg, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		return reply(req.Frames...)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestServerEvictsIdlestPerIP: at MaxConnsPerIP a new connection closes
// the connection of its address idle the longest, counted and logged
// once; connections of other addresses and the more recently active one
// are kept.
func TestServerEvictsIdlestPerIP(t *testing.T) {
	lg, logs := warnLog()
	srv := echoServerCfg(t, ServerConfig{MaxConnsPerIP: 2, IdleTimeout: time.Hour, Logger: lg})
	addr := srv.Addr().String()
	other := dialDealer(t, "127.0.0.2", addr)
	oldest := dialDealer(t, "127.0.0.1", addr)
	recent := dialDealer(t, "127.0.0.1", addr)
	// oldest becomes the most recently active: the idle order is by the
	// last reply, not by arrival.
	askRaw(t, oldest, "x")
	waitFor(t, 5*time.Second, "three connections", func() bool { return srv.Stats().Conns == 3 })
	newcomer := dialDealer(t, "127.0.0.1", addr)
	if got := askRaw(t, newcomer, "hello"); got != "hello" {
		t.Fatalf("reply %q", got)
	}
	if isOpen(recent, 5*time.Second) {
		t.Error("the connection idle the longest was not evicted")
	}
	if !isOpen(oldest, 50*time.Millisecond) || !isOpen(other, 50*time.Millisecond) {
		t.Error("a more recently active connection, or one of another address, was evicted")
	}
	st := srv.Stats()
	if st.Evicted != 1 || st.Refused != 0 || st.Conns != 3 {
		t.Errorf("stats %+v: want 1 evicted, none refused, 3 open", st)
	}
	for i := 0; i < 5; i++ { // more evictions: counted, not logged again
		dialDealer(t, "127.0.0.1", addr)
	}
	waitFor(t, 5*time.Second, "six evictions", func() bool { return srv.Stats().Evicted == 6 })
	if lines := linesWith(logs, "idle connection closed to make room"); len(lines) != 1 || lines[0].ContextMap()["remote"] == nil {
		t.Errorf("%d eviction lines (%+v), want one with the remote address", len(lines), lines)
	}
}

// TestServerEvictsIdlestAtMaxConns: at MaxConns a new connection, from
// any address, closes the connection idle the longest of all; a
// connection still in its handshake counts as idle since it arrived.
func TestServerEvictsIdlestAtMaxConns(t *testing.T) {
	srv := echoServerCfg(t, ServerConfig{MaxConns: 3, IdleTimeout: time.Hour, HandshakeTimeout: time.Hour})
	addr := srv.Addr().String()
	silent := dialFrom(t, "127.0.0.2", addr) // never handshakes
	a := dialDealer(t, "127.0.0.3", addr)
	b := dialDealer(t, "127.0.0.4", addr)
	waitFor(t, 5*time.Second, "three connections", func() bool { return srv.Stats().Conns == 3 })
	c := dialDealer(t, "127.0.0.5", addr)
	askRaw(t, c, "1")
	if isOpen(silent, 5*time.Second) {
		t.Fatal("the silent connection, idle the longest, was kept")
	}
	askRaw(t, a, "2") // now b is idle the longest
	d := dialDealer(t, "127.0.0.6", addr)
	askRaw(t, d, "3")
	if isOpen(b, 5*time.Second) || !isOpen(a, 50*time.Millisecond) {
		t.Error("evicted the wrong connection")
	}
	if st := srv.Stats(); st.Evicted != 2 || st.Refused != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestServerRefusesWhenAllBusy: a connection with a request in flight is
// never evicted; when every connection under the cap has one, the new
// connection is refused and counted.
func TestServerRefusesWhenAllBusy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{MaxConnsPerIP: 2, MaxConns: 3}, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return reply(req.Frames...)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addr().String()
	busy := []net.Conn{dialDealer(t, "127.0.0.1", addr), dialDealer(t, "127.0.0.1", addr)}
	for _, nc := range busy {
		if _, err := nc.Write(appendMsg(nil, [][]byte{[]byte("wait")})); err != nil {
			t.Fatal(err)
		}
	}
	<-entered
	<-entered
	refused := dialFrom(t, "127.0.0.1", addr)
	waitFor(t, 5*time.Second, "the refusal per address", func() bool { return srv.Stats().RefusedPerIP == 1 })
	expectClosedConns(t, []net.Conn{refused})
	third := dialDealer(t, "127.0.0.2", addr) // the third place, idle
	_ = third
	waitFor(t, 5*time.Second, "three connections", func() bool { return srv.Stats().Conns == 3 })
	// At MaxConns with one idle connection: it goes, the busy ones stay.
	fourth := dialDealer(t, "127.0.0.3", addr)
	if isOpen(third, 5*time.Second) {
		t.Error("the idle connection was kept")
	}
	close(release)
	for _, nc := range busy {
		fr := newFrameReader(nc, 4096, 1<<20, 8)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if frames, _, err := fr.readMsg(nil); err != nil || string(frames[0]) != "wait" {
			t.Errorf("busy connection's reply: %v %q", err, frames)
		}
	}
	askRaw(t, fourth, "ok")
	if st := srv.Stats(); st.Evicted != 1 || st.RefusedPerIP != 1 || st.RefusedConns != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestServerIdleFloodDoesNotKeepClientOut: 1,023 connections that
// completed the handshake and ask nothing, 256 of them from the client's
// own address, and IdleTimeout an hour: a Client is still answered, each
// time it connects, by evicting one of them.
func TestServerIdleFloodDoesNotKeepClientOut(t *testing.T) {
	const flood = 1023
	lg, logs := warnLog()
	srv := echoServerCfg(t, ServerConfig{IdleTimeout: time.Hour, Logger: lg})
	addr := srv.Addr().String()
	for i := 0; i < flood; i++ {
		src := "127.0.0.1"
		if i >= 256 {
			src = fmt.Sprintf("127.0.1.%d", i/256)
		}
		dialDealer(t, src, addr)
	}
	waitFor(t, 10*time.Second, "the flood in place", func() bool { return srv.Stats().Conns == flood })
	for i := 0; i < 3; i++ {
		c, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: 5 * time.Second, Attempts: 1})
		start := time.Now()
		if _, err := c.Request(testCtx(t, 10*time.Second), [][]byte{[]byte("x")}); err != nil {
			t.Fatal(err)
		}
		t.Logf("client %d answered in %v", i, time.Since(start))
		defer c.Close() // held, so the next one finds the server full again
	}
	st := srv.Stats()
	if st.Evicted != 3 || st.Refused != 0 {
		t.Errorf("stats %+v: want 3 evictions and no refusal", st)
	}
	if n := len(linesWith(logs, "idle connection closed to make room")); n != 1 {
		t.Errorf("%d eviction lines, want 1", n)
	}
}

// TestPubEvictsWhatTheApplicationSpares: with Evictable set, a new
// connection at MaxConnsPerIP closes the first-connected subscriber the
// application spares, never one it protects; with none to spare it is
// refused as before. At MaxPeers the same holds across addresses.
func TestPubEvictsWhatTheApplicationSpares(t *testing.T) {
	var events eventLog
	protected := map[ConnID]bool{}
	var protMu = make(chan struct{}, 1)
	protMu <- struct{}{}
	spare := func(id ConnID) bool {
		<-protMu
		defer func() { protMu <- struct{}{} }()
		return !protected[id]
	}
	protect := func(id ConnID) {
		<-protMu
		protected[id] = true
		protMu <- struct{}{}
	}
	lg, logs := warnLog()
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{MaxConnsPerIP: 2, MaxPeers: 3, Evictable: spare, OnEvent: events.add, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	first := dialRawSub(t, p.Endpoint(), "t", 0)
	waitFor(t, 5*time.Second, "first", func() bool { return len(events.of(PeerSubscribed)) == 1 })
	protect(events.of(PeerConnected)[0].Conn)
	second := dialRawSub(t, p.Endpoint(), "t", 0)
	waitFor(t, 5*time.Second, "second", func() bool { return len(events.of(PeerSubscribed)) == 2 })
	// 127.0.0.1 is full: the third evicts the second, not the protected first.
	dialRawSub(t, p.Endpoint(), "t", 0)
	waitFor(t, 5*time.Second, "third", func() bool { return len(events.of(PeerSubscribed)) == 3 })
	expectClosedConns(t, []net.Conn{second})
	if !isOpen(first, 50*time.Millisecond) {
		t.Fatal("the protected connection was evicted")
	}
	gone := events.of(PeerDisconnected)
	if len(gone) != 1 || !errors.Is(gone[0].Err, ErrEvicted) {
		t.Fatalf("disconnects %+v: want one, ErrEvicted", gone)
	}
	protect(events.of(PeerConnected)[2].Conn)
	// Nothing to spare on 127.0.0.1: refused.
	refused := dialFrom(t, "127.0.0.1", p.Addr().String())
	waitFor(t, 5*time.Second, "the refusal", func() bool { return p.Stats().RefusedPerIP == 1 })
	expectClosedConns(t, []net.Conn{refused})
	// MaxPeers (3): one more from another address fits, the next evicts it.
	other := dialRawSubFrom(t, "127.0.0.2", p.Addr().String(), "t")
	waitFor(t, 5*time.Second, "fourth", func() bool { return len(events.of(PeerSubscribed)) == 4 })
	dialRawSubFrom(t, "127.0.0.3", p.Addr().String(), "t")
	waitFor(t, 5*time.Second, "fifth", func() bool { return len(events.of(PeerSubscribed)) == 5 })
	expectClosedConns(t, []net.Conn{other})
	st := p.Stats()
	if st.Evicted != 2 || st.Refused != 1 || st.Peers != 3 {
		t.Errorf("stats %+v: want 2 evicted, 1 refused, 3 peers", st)
	}
	if n := len(linesWith(logs, "subscriber connection closed to make room")); n != 1 {
		t.Errorf("%d eviction lines, want 1", n)
	}
}

// dialRawSubFrom is dialRawSub from source address src.
func dialRawSubFrom(t testing.TB, src, addr, prefix string) net.Conn {
	t.Helper()
	nc := dialFrom(t, src, addr)
	if _, err := handshake(nc, zmq4.Sub, nil, false, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	body := append([]byte{1}, prefix...)
	if _, err := nc.Write(append([]byte{0, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	return nc
}
