package wire

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// garbage is what hostile or confused clients send to a ZMTP port. The
// last three crashed any process using zmq4 v0.17's handshake, ours
// included, before handshake() guarded it.
var garbage = []struct {
	name string
	data []byte
}{
	{"http", []byte("GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: probe\r\nAccept: */*\r\n\r\n")},
	{"wrong-mechanism", func() []byte { g := zmtpGreeting(false); copy(g[12:32], "CURVE\x00\x00\x00\x00"); return g }()},
	{"data-frame-in-handshake", append(zmtpGreeting(false), 0x00, 3, 'a', 'b', 'c')},
	// A READY command whose metadata property runs past the end of the
	// frame: zmq4's Property.Write slices out of range (panic).
	{"truncated-metadata", append(zmtpGreeting(false), 0x04, 9, 5, 'R', 'E', 'A', 'D', 'Y', 3, 'a', 'b')},
	// A command announcing 2^45 bytes: zmq4's Conn.read calls make with
	// it (fatal out of memory, which no recover catches).
	{"huge-command", append(zmtpGreeting(false), 0x06, 0, 0, 0x20, 0, 0, 0, 0, 0)},
	// 2^62 bytes: makeslice: len out of range (panic).
	{"absurd-command", append(zmtpGreeting(false), 0x06, 0x40, 0, 0, 0, 0, 0, 0, 0)},
}

// hostileClients opens idle TCP connections that never send a byte, and
// one connection per garbage kind. It returns both.
func hostileClients(t *testing.T, addr string, idle int) (silent, bad []net.Conn) {
	t.Helper()
	for i := 0; i < idle; i++ {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		silent = append(silent, nc)
	}
	for _, g := range garbage {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		if _, err := nc.Write(g.data); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, nc)
	}
	return silent, bad
}

// expectClosed checks that the other side closed each garbage connection.
func expectClosed(t *testing.T, what string, conns []net.Conn) {
	t.Helper()
	for i, nc := range conns {
		if err := nc.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err := io.Copy(io.Discard, nc) // the greeting, then EOF or reset
		if isTimeout(err) {
			t.Errorf("%s: %s connection still open", what, garbage[i].name)
		}
	}
}

// TestSilentAndGarbageClients is defect 3: zmq4's socket.accept runs the
// handshake of each new connection inline with no deadline, so one client
// that connects and says nothing blocks every later one, and its parser
// crashes on a few bytes of garbage. wire.Pub and wire.Server handshake
// each connection in its own goroutine behind a guard: with 50 silent and
// 6 garbage clients on each port and a HandshakeTimeout far longer than
// the test, a new subscriber connects and a request is answered (so
// nobody waited for the silent ones), the garbage connections are closed
// and counted, and the silent ones are counted when they leave.
func TestSilentAndGarbageClients(t *testing.T) {
	const idle = 50
	ctx := testCtx(t, 30*time.Second)
	// Room for every hostile handshake from the one address: this test
	// is about waiting, not about eviction (pending_test.go).
	pub, err := Listen("tcp://127.0.0.1:0", PubConfig{HandshakeTimeout: time.Hour, MaxPendingPerIP: 2 * idle})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{HandshakeTimeout: time.Hour}, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		return reply(req.Frames...)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	silentPub, badPub := hostileClients(t, pub.Addr().String(), idle)
	silentSrv, badSrv := hostileClients(t, srv.Addr().String(), idle)

	start := time.Now()
	sub := NewSub(SubConfig{}, "t")
	defer sub.Close()
	if err := sub.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("got %+v, %v; want Connected", d, err)
	}
	subTook := time.Since(start)
	start = time.Now()
	c, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: 10 * time.Second, Attempts: 1})
	defer c.Close()
	reply, err := c.Request(ctx, [][]byte{[]byte("ping")})
	reqTook := time.Since(start)
	if err != nil || string(reply[0]) != "ping" {
		t.Fatalf("request: %q, %v", reply, err)
	}
	t.Logf("with %d silent and %d garbage clients: subscriber connected in %v, request answered in %v",
		idle, len(garbage), subTook.Round(time.Microsecond), reqTook.Round(time.Microsecond))
	// The data path works too.
	waitFor(t, 5*time.Second, "subscription", func() bool {
		s := *pub.snap.Load()
		return len(s) == 1 && s[0].subs.match([]byte("t"))
	})
	if err := pub.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Message {
		t.Fatalf("got %+v, %v; want the message", d, err)
	}

	expectClosed(t, "pub", badPub)
	expectClosed(t, "server", badSrv)
	waitFor(t, 10*time.Second, "every garbage connection counted", func() bool {
		return pub.Stats().HandshakeFailed == uint64(len(garbage)) && srv.Stats().HandshakeFailed == uint64(len(garbage))
	})
	for _, nc := range append(silentPub, silentSrv...) {
		nc.Close()
	}
	total := uint64(idle + len(garbage))
	waitFor(t, 10*time.Second, "every hostile connection counted", func() bool {
		return pub.Stats().HandshakeFailed == total && srv.Broken() == total
	})
	if st := pub.Stats(); st.Peers != 1 || st.Refused != 0 {
		t.Errorf("pub stats %+v: want the one subscriber and nothing refused", st)
	}
}

// TestHandshakeGarbageFromServer: the dialling side runs the same zmq4
// parser on what the server sends, so a hostile or broken endpoint could
// crash a subscriber or a client. Sub keeps retrying and Client returns
// an error; neither crashes.
func TestHandshakeGarbageFromServer(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	for _, g := range garbage {
		t.Run(g.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			defer ln.Close()
			var accepted sync.WaitGroup
			accepted.Add(3) // two Sub attempts and the Client's
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					nc, err := ln.Accept()
					if err != nil {
						return
					}
					if i < 3 {
						accepted.Done()
					}
					// Keep the connection until the client gives up, so it
					// reads the garbage rather than failing to write.
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer nc.Close()
						nc.Write(g.data)
						nc.SetReadDeadline(time.Now().Add(5 * time.Second))
						io.Copy(io.Discard, nc)
					}()
				}
			}()
			ep := "tcp://" + ln.Addr().String()
			sub := NewSub(SubConfig{ReconnectMin: time.Millisecond, ReconnectMax: 5 * time.Millisecond}, "")
			defer sub.Close()
			if err := sub.Connect(ep); err != nil {
				t.Fatal(err)
			}
			c, _ := NewClient(ep, ClientConfig{Timeout: time.Second, Attempts: 1})
			defer c.Close()
			if _, err := c.Request(ctx, [][]byte{[]byte("q")}); !errors.Is(err, ErrTimeout) {
				t.Errorf("client: %v, want ErrTimeout", err)
			}
			accepted.Wait()
			select {
			case d := <-sub.Deliveries():
				t.Errorf("sub delivered %+v from a garbage server", d)
			default:
			}
		})
	}
}

// TestBareZmq4SilentClientBlocksAccept asserts that one TCP client that
// connects to a zmq4 PUB and says nothing still stops the PUB from
// accepting anybody else: once zmq4 has sent that client its greeting
// (so its accept loop waits in the handshake), a subscriber does not get
// connected in 1.5 s, and gets connected once the silent client leaves.
// If zmq4 ever handshakes off its accept loop, the test fails: revisit
// docs/transport.md, defect 3.
func TestBareZmq4SilentClientBlocksAccept(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	pub := newZmqPub(t)
	defer pub.Close()
	silent, err := net.Dial("tcp", pub.s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// zmq4 greets first: reading its greeting proves the accept loop took
	// this connection and now waits for ours, which never comes.
	if err := silent.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(silent, make([]byte, greetingSize)); err != nil {
		t.Fatalf("no greeting from zmq4: %v", err)
	}
	sub := NewSub(SubConfig{}, "t")
	defer sub.Close()
	if err := sub.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if d, err := sub.Recv(wait); err == nil {
		t.Fatalf("zmq4 accepted a subscriber (%v) while a silent client was in its handshake: the defect is fixed, revisit docs/transport.md, defect 3", d.Kind)
	}
	left := time.Now()
	silent.Close() // zmq4's Open fails at last; accept moves on
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("after the silent client left: %+v, %v", d, err)
	}
	t.Logf("zmq4: no subscriber accepted for 1.5 s behind one silent client; connected %v after it left", time.Since(left).Round(time.Millisecond))
}

// TestBareZmq4GarbageCrashes asserts that 11 bytes after a valid
// greeting still crash a process that listens with zmq4 (the panic is in
// zmq4's accept goroutine, out of the application's reach). The test runs
// the zmq4 PUB in a child process and checks how it died. If the child
// survives, zmq4's parser was fixed: revisit docs/transport.md, defect 3.
func TestBareZmq4GarbageCrashes(t *testing.T) {
	const name = "TestBareZmq4GarbageCrashes"
	if inChild(name) {
		pub := newZmqPub(t)
		nc, err := net.Dial("tcp", pub.s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(garbage[3].data) // truncated-metadata
		// Until zmq4 kills the process, or 5 s: then it survived.
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, nc)
		nc.Close()
		pub.Close()
		printEvidence("survived", 1)
		return
	}
	out := runChild(t, name, time.Minute)
	i := strings.Index(out, "panic:")
	if i < 0 {
		t.Fatalf("zmq4 survived the garbage: the defect is fixed, revisit docs/transport.md, defect 3:\n%s", out)
	}
	line, _, _ := strings.Cut(out[i:], "\n")
	t.Logf("zmq4: %d bytes after the greeting crashed the listening process: %s", len(garbage[3].data)-greetingSize, line)
}
