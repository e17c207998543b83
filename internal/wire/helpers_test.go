package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// testCtx returns a context that ends at d, so no test can hang.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pollUntil polls cond until it holds or timeout passes, and reports
// whether it held. For the bare-zmq4 tests, where "never" is the expected
// answer.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// dialRawSub opens a TCP connection to a PUB endpoint, does the ZMTP
// handshake as a SUB and subscribes to prefix with a ZMTP 3.0
// subscription message. What happens next (reading or not) is the
// caller's: it is the subscriber whose reads a test controls exactly.
func dialRawSub(t testing.TB, endpoint, prefix string, rcvBuf int) net.Conn {
	t.Helper()
	addr, err := SplitEndpoint(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if rcvBuf > 0 {
		if err := nc.(*net.TCPConn).SetReadBuffer(rcvBuf); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := handshake(nc, zmq4.Sub, nil, false, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	body := append([]byte{1}, prefix...)
	if _, err := nc.Write(append([]byte{0, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	return nc
}

// countMessages reads ZMTP frames from r without keeping them and counts
// complete messages (a truncated last message is not counted) until r
// fails. It allocates nothing per message, so it does not disturb heap
// measurements.
func countMessages(r io.Reader, onMsg func(n int)) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		flags, err := br.ReadByte()
		if err != nil {
			return n, err
		}
		var size uint64
		if flags&flagLong != 0 {
			var b [8]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return n, err
			}
			size = binary.BigEndian.Uint64(b[:])
		} else {
			b, err := br.ReadByte()
			if err != nil {
				return n, err
			}
			size = uint64(b)
		}
		if _, err := br.Discard(int(size)); err != nil {
			return n, err
		}
		if flags&(flagMore|flagCommand) == 0 {
			n++
			if onMsg != nil {
				onMsg(n)
			}
		}
	}
}

// zmtpGreeting returns a valid ZMTP 3.0 NULL greeting.
func zmtpGreeting(server bool) []byte {
	g := make([]byte, greetingSize)
	g[0], g[9], g[10], g[11] = 0xff, 0x7f, 3, 0
	copy(g[12:], "NULL")
	if server {
		g[32] = 1
	}
	return g
}

// eventLog records a Pub's PeerEvents for assertions.
type eventLog struct {
	mu     sync.Mutex
	events []PeerEvent
}

func (l *eventLog) add(ev PeerEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) of(typ PeerEventType) []PeerEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []PeerEvent
	for _, ev := range l.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// seqPayload returns a payload of size bytes (at least 8) that carries
// seq and a pattern derived from it, so a check can tell any corruption.
func seqPayload(buf []byte, seq uint64, size int) []byte {
	buf = append(buf[:0], make([]byte, size)...)
	fillSeq(buf, seq)
	return buf
}

func fillSeq(b []byte, seq uint64) {
	binary.BigEndian.PutUint64(b, seq)
	for i := 8; i < len(b); i++ {
		b[i] = byte(seq*31 + uint64(i))
	}
}

// checkSeq reports the seq a payload carries and whether the rest of it
// matches the pattern fillSeq wrote.
func checkSeq(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	seq := binary.BigEndian.Uint64(b)
	for i := 8; i < len(b); i++ {
		if b[i] != byte(seq*31+uint64(i)) {
			return seq, false
		}
	}
	return seq, true
}

// childEnv tells a child process started by runChild which test it runs
// in child mode.
const childEnv = "SYNCMQ_WIRE_CHILD"

// inChild reports whether this process is a child started by runChild
// for test name.
func inChild(name string) bool { return os.Getenv(childEnv) == name }

// runChild runs test name of this test binary in a child process in
// child mode and returns what the child printed. The child's exit status
// is not judged: the caller asserts on the evidence lines the child
// printed (see evidence), because the zmq4 defect under test may crash
// the child or trip the race detector there.
func runChild(t *testing.T, name string, timeout time.Duration) string {
	t.Helper()
	ctx := testCtx(t, timeout)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("child %s did not finish in %v:\n%s", name, timeout, out.String())
	}
	t.Logf("child %s: %v", name, err)
	return out.String()
}

// printEvidence prints key=value pairs on one line for the parent of a
// child process to read with evidence.
func printEvidence(kv ...any) {
	var b strings.Builder
	b.WriteString("EVIDENCE")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	fmt.Println(b.String())
}

// evidence returns the value of key on the EVIDENCE line of out, and
// whether there was one.
func evidence(out, key string) (int, bool) {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "EVIDENCE ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			if k, v, _ := strings.Cut(f, "="); k == key {
				n, err := strconv.Atoi(v)
				return n, err == nil
			}
		}
	}
	return 0, false
}
