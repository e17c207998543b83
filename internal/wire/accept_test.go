package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
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
// one connection per garbage kind. It returns the garbage connections.
func hostileClients(t *testing.T, addr string, idle int) []net.Conn {
	t.Helper()
	for i := 0; i < idle; i++ {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
	}
	var bad []net.Conn
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
	return bad
}

// expectClosed checks that the other side closed each garbage connection.
func expectClosed(t *testing.T, what string, conns []net.Conn) {
	t.Helper()
	for i, nc := range conns {
		if err := nc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
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
// each connection in its own goroutine with a deadline, behind a guard:
// with 50 silent and 6 garbage clients on each port, a new subscriber
// connects and a request is answered within 1 s, the garbage connections
// are closed and counted, and the silent ones are reaped and counted.
func TestSilentAndGarbageClients(t *testing.T) {
	const idle = 50
	ctx := testCtx(t, 30*time.Second)
	pub, err := Listen("tcp://127.0.0.1:0", PubConfig{HandshakeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{HandshakeTimeout: time.Second}, func(ctx context.Context, p Peer, req [][]byte, reply func(...[]byte) error) error {
		return reply(req...)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	badPub := hostileClients(t, pub.Addr().String(), idle)
	badSrv := hostileClients(t, srv.Addr().String(), idle)

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
	c, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: time.Second, Attempts: 1})
	defer c.Close()
	reply, err := c.Request(ctx, [][]byte{[]byte("ping")})
	reqTook := time.Since(start)
	if err != nil || string(reply[0]) != "ping" {
		t.Fatalf("request: %q, %v", reply, err)
	}
	t.Logf("with %d silent and %d garbage clients: subscriber connected in %v, request answered in %v",
		idle, len(garbage), subTook.Round(time.Microsecond), reqTook.Round(time.Microsecond))
	if subTook > time.Second || reqTook > time.Second {
		t.Errorf("subscriber took %v, request %v; want both under 1 s", subTook, reqTook)
	}
	// The data path works too.
	waitFor(t, 5*time.Second, "subscription", func() bool {
		s := *pub.snap.Load()
		return len(s) == 1 && s[0].subscribed([]byte("t"))
	})
	if err := pub.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Message {
		t.Fatalf("got %+v, %v; want the message", d, err)
	}

	expectClosed(t, "pub", badPub)
	expectClosed(t, "server", badSrv)
	// Garbage fails at once; the silent ones when HandshakeTimeout passes.
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

// TestBareZmq4SilentClientBlocksAccept: one TCP client that connects to a
// zmq4 PUB and says nothing stops the PUB from accepting anybody else.
func TestBareZmq4SilentClientBlocksAccept(t *testing.T) {
	requireBare(t)
	ctx := testCtx(t, 30*time.Second)
	pub := newZmqPub(t)
	defer pub.Close()
	silent, err := net.Dial("tcp", pub.s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	sub := NewSub(SubConfig{}, "t")
	defer sub.Close()
	if err := sub.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := sub.Recv(wait); err != nil {
		t.Errorf("zmq4: a subscriber could not connect for %v because one TCP client is silent (%v)", time.Since(start).Round(time.Millisecond), err)
	}
	left := time.Now()
	silent.Close() // zmq4's Open fails at last; accept moves on
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("after the silent client left: %+v, %v", d, err)
	}
	t.Logf("connected %v after the silent client left", time.Since(left).Round(time.Millisecond))
}

// crashHelperEnv makes TestBareZmq4GarbageCrashes's child process feed
// garbage to a zmq4 PUB in-process.
const crashHelperEnv = "SYNCMQ_ZMQ4_CRASH_CHILD"

// TestBareZmq4GarbageCrashes: 11 bytes after a valid greeting crash a
// process that listens with zmq4 (the panic is in zmq4's accept goroutine,
// out of the application's reach). The test runs the zmq4 PUB in a child
// process and reports how it died.
func TestBareZmq4GarbageCrashes(t *testing.T) {
	if os.Getenv(crashHelperEnv) == "1" {
		pub := newZmqPub(t)
		nc, err := net.Dial("tcp", pub.s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(garbage[3].data) // truncated-metadata
		// The child lives until zmq4 kills it or the parent's deadline does.
		io.Copy(io.Discard, nc)
		select {}
	}
	requireBare(t)
	ctx := testCtx(t, 15*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBareZmq4GarbageCrashes$", "-test.v")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if i := strings.Index(out.String(), "panic:"); i >= 0 {
		line, _, _ := strings.Cut(out.String()[i:], "\n")
		t.Errorf("zmq4: %d bytes after the greeting crashed the listening process (%v): %s", len(garbage[3].data)-greetingSize, err, line)
	} else {
		t.Logf("child survived (%v):\n%s", err, out.String())
	}
}
