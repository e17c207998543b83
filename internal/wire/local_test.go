package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLocalEndpoints: ipc:// and inproc:// endpoints are checked before
// anything is bound or dialed, with errors that say what is wrong.
func TestLocalEndpoints(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxIPCPath)
	tests := []struct {
		ep, addr string
		bad      string // part of the error; "" means valid
	}{
		{"ipc:///tmp/a.sock", "/tmp/a.sock", ""},
		{"ipc://rel.sock", "rel.sock", ""},
		{"ipc:///tmp/a.sock?mode=0660", "/tmp/a.sock", ""},
		{"ipc://" + long[:MaxIPCPath], long[:MaxIPCPath], ""},
		{"ipc://" + long, "", "ipc path of 108 bytes, at most 107"},
		{"ipc://", "", "ipc:// needs a path"},
		{"ipc://@abstract", "", "abstract Unix sockets"},
		{"ipc:///tmp/a.sock?mode=0888", "", "not octal"},
		{"ipc:///tmp/a.sock?mode=01777", "", "beyond 0777"},
		{"ipc:///tmp/a.sock?mode=0066", "", "must let the owner read and write"},
		{"ipc:///tmp/a.sock?perm=0600", "", "the only ipc:// option"},
		{"ipc:///tmp/", "", "names a directory"},
		{"inproc://feed", "feed", ""},
		{"inproc://", "", "inproc:// needs a name"},
		{"inproc://" + strings.Repeat("n", MaxInprocName+1), "", "inproc name of 257 bytes"},
		{"pgm://eth0;239.1.1.1:5555", "", `unknown scheme "pgm"`},
		{"/tmp/a.sock", "", "want tcp://host:port, tls://host:port, ipc:///path or inproc://name"},
	}
	for _, tt := range tests {
		_, addr, err := ParseEndpoint(tt.ep)
		switch {
		case tt.bad == "" && (err != nil || addr != tt.addr):
			t.Errorf("%s: %q, %v; want %q", tt.ep, addr, err, tt.addr)
		case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad) || !errors.Is(err, ErrBadEndpoint)):
			t.Errorf("%s: %v; want ErrBadEndpoint saying %q", tt.ep, err, tt.bad)
		}
	}
	if err := CheckDialEndpoint("ipc:///tmp/a.sock?mode=0660"); err == nil || !strings.Contains(err.Error(), "when binding") {
		t.Errorf("dialing with a mode: %v", err)
	}
	for _, ep := range []string{"ipc:///tmp/a.sock", "inproc://feed"} {
		if err := CheckDialEndpoint(ep); err != nil {
			t.Errorf("CheckDialEndpoint(%s): %v", ep, err)
		}
		if !IsLocal(ep) || IsTLS(ep) {
			t.Errorf("%s: IsLocal %v, IsTLS %v", ep, IsLocal(ep), IsTLS(ep))
		}
	}
	// A TLS configuration is refused on both: neither carries TLS.
	tc := &TLS{}
	for _, ep := range []string{"ipc://" + filepath.Join(t.TempDir(), "t.sock"), "inproc://tls-refused"} {
		if _, err := Listen(ep, PubConfig{TLS: tc}); !errors.Is(err, ErrBadEndpoint) || !strings.Contains(err.Error(), "carry no TLS") {
			t.Errorf("Listen(%s) with TLS: %v", ep, err)
		}
		if _, err := NewClient(ep, ClientConfig{TLS: tc}); !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("NewClient(%s) with TLS: %v", ep, err)
		}
	}
}

// FuzzParseEndpoint: any string parses or fails with ErrBadEndpoint,
// never a panic; what parses has an address within its scheme's limits.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:5561", "tls://*:0", "tcp://[::1]:1", "ipc:///tmp/a.sock",
		"ipc:///tmp/a.sock?mode=0660", "ipc://?mode=", "ipc://@x", "inproc://feed", "inproc://", "x://y", "://", "tcp://:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ep string) {
		scheme, addr, err := ParseEndpoint(ep)
		if err != nil {
			if !errors.Is(err, ErrBadEndpoint) {
				t.Fatalf("%q: %v is not ErrBadEndpoint", ep, err)
			}
			return
		}
		switch scheme {
		case SchemeIPC:
			if addr == "" || len(addr) > MaxIPCPath || strings.ContainsRune(addr, 0) {
				t.Fatalf("%q: ipc path %q", ep, addr)
			}
		case SchemeInproc:
			if addr == "" || len(addr) > MaxInprocName {
				t.Fatalf("%q: inproc name %q", ep, addr)
			}
		case SchemeTCP, SchemeTLS:
			if err := CheckAddr(addr); err != nil {
				t.Fatalf("%q: address %q: %v", ep, addr, err)
			}
		default:
			t.Fatalf("%q: scheme %q", ep, scheme)
		}
		_ = CheckDialEndpoint(ep)
	})
}

// pubSubOver starts a Pub on ep and a Sub (borrowing or not) connected
// to it and subscribed to everything, and waits until the Pub sees the
// subscription.
func pubSubOver(t *testing.T, ep string, pcfg PubConfig, scfg SubConfig) (*Pub, *Sub) {
	t.Helper()
	subscribed := make(chan struct{}, 16)
	pcfg.OnEvent = chainEvent(pcfg.OnEvent, func(ev PeerEvent) {
		if ev.Type == PeerSubscribed {
			subscribed <- struct{}{}
		}
	})
	p, err := Listen(ep, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	s := NewSub(scfg, "")
	t.Cleanup(func() { s.Close() })
	if err := s.Connect(p.Endpoint()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no subscription", ep)
	}
	return p, s
}

func chainEvent(a, b func(PeerEvent)) func(PeerEvent) {
	return func(ev PeerEvent) {
		if a != nil {
			a(ev)
		}
		b(ev)
	}
}

// recvPayloads reads deliveries until n messages arrived and returns
// their first frames (copied), releasing borrowed ones.
func recvPayloads(t *testing.T, s *Sub, n int) []string {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	var got []string
	for len(got) < n {
		d, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("after %d of %d: %v", len(got), n, err)
		}
		switch d.Kind {
		case Message:
			got = append(got, string(d.Frames[0]))
		case Messages:
			if d.InProcess != strings.HasPrefix(d.Endpoint, "inproc://") {
				t.Errorf("InProcess %v for a delivery from %s", d.InProcess, d.Endpoint)
			}
			for i := range d.Msgs.Len() {
				got = append(got, string(d.Msgs.Msg(i)[0]))
			}
			d.Release()
		}
	}
	return got
}

// TestIPCPubSub: a Pub and a Server on ipc:// serve a Sub (reading in
// place and copying) and a Client; the socket files have the mode the
// endpoint asks for (DefaultIPCMode without one) and are removed on
// Close.
func TestIPCPubSub(t *testing.T) {
	dir := t.TempDir()
	for _, borrow := range []bool{true, false} {
		path := filepath.Join(dir, fmt.Sprintf("pub-%v.sock", borrow))
		p, s := pubSubOver(t, "ipc://"+path, PubConfig{}, SubConfig{Borrow: borrow})
		if p.Endpoint() != "ipc://"+path {
			t.Errorf("Endpoint %q", p.Endpoint())
		}
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != DefaultIPCMode {
			t.Fatalf("socket file: %v, %v", fi.Mode(), err)
		}
		ctx := testCtx(t, 10*time.Second)
		for i := range 100 {
			if err := p.Send(ctx, &Msg{Frames: [][]byte{fmt.Appendf(nil, "m%d", i), []byte("body")}}); err != nil {
				t.Fatal(err)
			}
		}
		got := recvPayloads(t, s, 100)
		if got[0] != "m0" || got[99] != "m99" {
			t.Errorf("borrow=%v: got %q ... %q", borrow, got[0], got[99])
		}
		p.Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file after Close: %v", err)
		}
	}
	path := filepath.Join(dir, "sync.sock")
	srv, err := Serve("ipc://"+path+"?mode=0660", ServerConfig{}, func(_ context.Context, req Request, reply func(...[]byte) error) error {
		return reply([]byte("re:"+string(req.Frames[0])), []byte(req.Peer.Remote))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("?mode=0660: %v, %v", fi.Mode(), err)
	}
	c, err := NewClient(srv.Endpoint(), ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Request(testCtx(t, 10*time.Second), [][]byte{[]byte("ping")})
	if err != nil {
		t.Fatal(err)
	}
	// The Server names an ipc:// peer by its user id (SO_PEERCRED).
	if string(reply[0]) != "re:ping" || string(reply[1]) != fmt.Sprintf("ipc uid=%d", os.Getuid()) {
		t.Errorf("reply %q", reply)
	}
}

// TestIPCStaleSocket: a socket file nobody listens on (a crashed
// publisher's) is replaced; one with a live listener, or a file that is
// not a socket, is left alone and the bind fails saying why.
func TestIPCStaleSocket(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close() // the file stays, as after a crash
	p, err := Listen("ipc://"+stale, PubConfig{})
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer p.Close()

	// A live listener: ours.
	if _, err := Listen("ipc://"+stale, PubConfig{}); err == nil || !strings.Contains(err.Error(), "another process listens on it") {
		t.Errorf("over a live socket: %v", err)
	}
	if _, err := os.Lstat(stale); err != nil {
		t.Errorf("the live socket's file: %v", err)
	}
	file := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Serve("ipc://"+file, ServerConfig{}, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Errorf("the regular file: %q, %v", b, err)
	}
}

// TestIPCPerUID: on ipc:// the per-address limits count the connecting
// user, so a second connection of the same user is refused at
// MaxConnsPerIP 1.
func TestIPCPerUID(t *testing.T) {
	var remote atomic.Value
	p, _ := pubSubOver(t, "ipc://"+filepath.Join(t.TempDir(), "p.sock"), PubConfig{MaxConnsPerIP: 1, OnEvent: func(ev PeerEvent) {
		if ev.Type == PeerConnected {
			remote.Store(ev.Remote)
		}
	}}, SubConfig{})
	if want := fmt.Sprintf("ipc uid=%d", os.Getuid()); remote.Load() != want {
		t.Errorf("Remote %v, want %q", remote.Load(), want)
	}
	s2 := NewSub(SubConfig{}, "")
	defer s2.Close()
	s2.Connect(p.Endpoint())
	if !pollUntil(10*time.Second, func() bool { return p.Stats().RefusedPerIP > 0 }) {
		t.Errorf("second connection of the same user not refused: %+v", p.Stats())
	}
}
