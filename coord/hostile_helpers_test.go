package coord

import (
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/zmtptest"
	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/proto/handshake"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Helpers for the tests that play hostile peers against a Publisher over
// loopback with raw ZMTP connections (internal/zmtptest), so the attacker
// is not bound by what our own Subscriber would do.

// hostilePublisher is testPublisher for tests and benchmarks alike.
func hostilePublisher(tb testing.TB, mod func(*PublisherConfig)) *Publisher {
	tb.Helper()
	cfg := loopbackConfig()
	cfg.HeartbeatInterval = 100 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	p, err := NewPublisher(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// observedLogger returns a logger that records lines at warn level and
// above, and the recording.
func observedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.WarnLevel)
	return zap.New(core), logs
}

// countLines returns how many recorded lines contain s in their message.
func countLines(logs *observer.ObservedLogs, s string) int {
	return logs.FilterMessageSnippet(s).Len()
}

// rawHello connects a raw SUB to the publisher's data endpoint from src,
// subscribes to the control topic and returns the connection and the
// nonce of the first HELLO it receives.
func rawHello(t testing.TB, endpoint, src string) (*zmtptest.Conn, string) {
	t.Helper()
	c := zmtptest.MustDial(t, endpoint, "SUB", src)
	if err := c.Subscribe(envelope.ControlTopic); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		frames, err := c.Recv()
		if err != nil {
			t.Fatalf("waiting for a HELLO: %v", err)
		}
		m, err := envelope.Decode(frames, envelope.Limits{})
		if err == nil && m.Kind == envelope.KindHello {
			return c, hex.EncodeToString(m.Payload)
		}
	}
}

// readyFor is a READY to p under id quoting nonce.
func readyFor(p *Publisher, id, nonce string) []byte {
	return handshake.Encode(handshake.Ready{
		V: handshake.Version, Type: handshake.TypeReady, Subscriber: id,
		Publisher: p.ID().String(), Epoch: p.Epoch(), Nonce: nonce,
	})
}

// syncReply reads one reply from a raw sync connection and returns the
// error code ("" for an ACK).
func syncReply(t testing.TB, c *zmtptest.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	frames, err := c.Recv()
	if err != nil {
		t.Fatalf("sync reply: %v", err)
	}
	body := frames[len(frames)-1]
	if _, err := handshake.DecodeReply(body); err != nil {
		var er *handshake.ErrorReply
		if errors.As(err, &er) {
			return er.Code
		}
		t.Fatalf("sync reply %q: %v", body, err)
	}
	return ""
}

// askAll pipelines requests on a raw DEALER connection to the sync
// endpoint, chunk at a time, and counts the replies by code ("" for ACK).
func askAll(t testing.TB, c *zmtptest.Conn, reqs [][]byte, codes map[string]int) {
	t.Helper()
	const chunk = 512
	for len(reqs) > 0 {
		n := min(chunk, len(reqs))
		for _, r := range reqs[:n] {
			c.Queue(r)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		for range n {
			codes[syncReply(t, c)]++
		}
		reqs = reqs[n:]
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// coreState runs f on p's core under its lock.
func coreState[T any](p *Publisher, f func(c *pubCore) T) T {
	p.mu.Lock()
	defer p.mu.Unlock()
	return f(p.core)
}

// fetchMany is a FETCH_MANY of p's current epoch.
func fetchMany(p *Publisher, id uint32, ranges ...fetch.Range) []byte {
	return fetch.EncodeManyRequest(nil, fetch.ManyRequest{ID: id, Publisher: p.ID(), Epoch: p.Epoch(), Ranges: ranges})
}

// srcAddr returns the i-th loopback source address other than 127.0.0.1,
// for tests that need many hosts.
func srcAddr(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250) }

// lineMessages lists the distinct messages recorded, for failure output.
func lineMessages(logs *observer.ObservedLogs) string {
	seen := map[string]int{}
	for _, e := range logs.All() {
		seen[e.Message]++
	}
	var b strings.Builder
	for m, n := range seen {
		fmt.Fprintf(&b, "%dx %q; ", n, m)
	}
	return b.String()
}
