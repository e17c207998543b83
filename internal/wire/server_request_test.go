package wire

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// requestLog records the requests a handler saw.
type requestLog struct {
	mu   sync.Mutex
	reqs []Request
}

func (l *requestLog) handler(ctx context.Context, req Request, reply func(...[]byte) error) error {
	l.mu.Lock()
	l.reqs = append(l.reqs, req)
	l.mu.Unlock()
	if req.TooLarge {
		return reply([]byte("too-large"), []byte(fmt.Sprint(req.Size)))
	}
	return reply(append([]byte("re:"), bytes.Join(req.Frames, []byte(","))...))
}

func (l *requestLog) last() Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reqs[len(l.reqs)-1]
}

// TestDealerDelimiter: a DEALER may send its request as it is, or behind
// an empty delimiter frame as a REQ does; the handler sees the request
// without the delimiter either way, and the reply carries the delimiter
// back only to the DEALER that sent one. REQ peers are served as before.
func TestDealerDelimiter(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	var log requestLog
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{}, log.handler)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dealer, _ := NewClient(srv.Endpoint(), ClientConfig{Type: zmq4.Dealer, Timeout: 5 * time.Second})
	defer dealer.Close()
	req, _ := NewClient(srv.Endpoint(), ClientConfig{Type: zmq4.Req, Timeout: 5 * time.Second})
	defer req.Close()
	for _, tc := range []struct {
		name   string
		c      *Client
		frames [][]byte
		want   [][]byte // the reply as the client returns it
	}{
		{"dealer-plain", dealer, [][]byte{[]byte("READY")}, [][]byte{[]byte("re:READY")}},
		{"dealer-delimited", dealer, [][]byte{{}, []byte("READY")}, [][]byte{{}, []byte("re:READY")}},
		{"dealer-delimited-two-frames", dealer, [][]byte{{}, []byte("a"), []byte("b")}, [][]byte{{}, []byte("re:a,b")}},
		{"req", req, [][]byte{[]byte("READY")}, [][]byte{[]byte("re:READY")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := tc.c.Request(ctx, tc.frames)
			if err != nil {
				t.Fatal(err)
			}
			if !equalFrames(reply, tc.want) {
				t.Errorf("reply %q, want %q", reply, tc.want)
			}
			if got := log.last().Frames; len(got) == 0 || len(got[0]) == 0 {
				t.Errorf("the handler saw %q: the delimiter was not stripped", got)
			}
		})
	}
}

func equalFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestServerAnswersTooLarge: a request over MaxFrame or MaxFrames reaches
// the handler marked TooLarge, with the head of the oversized frame and
// the size sent, so it can be answered; the connection stays usable.
// Beyond the hard cap (16 × MaxFrame) the connection is closed and
// counted.
func TestServerAnswersTooLarge(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	const maxFrame = 1 << 10
	var log requestLog
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{MaxFrame: maxFrame, MaxFrames: 3}, log.handler)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, _ := NewClient(srv.Endpoint(), ClientConfig{Timeout: 5 * time.Second, Attempts: 1})
	defer c.Close()

	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<10/16)
	reply, err := c.Request(ctx, [][]byte{big, []byte("tail")})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]byte{[]byte("too-large"), []byte(fmt.Sprint(len(big) + 4))}; !equalFrames(reply, want) {
		t.Errorf("reply %q, want %q", reply, want)
	}
	r := log.last()
	if !r.TooLarge || len(r.Frames) != 2 || !bytes.Equal(r.Frames[0], big[:TooLargeHead]) || string(r.Frames[1]) != "tail" {
		t.Errorf("handler saw TooLarge %v, %d frames, head %q", r.TooLarge, len(r.Frames), r.Frames[0][:min(16, len(r.Frames[0]))])
	}

	// Too many frames: the first MaxFrames are kept, the REQ delimiter
	// being one of them.
	reply, err = c.Request(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")})
	if err != nil || string(reply[0]) != "too-large" {
		t.Fatalf("too many frames: %q, %v", reply, err)
	}
	if r := log.last(); !r.TooLarge || len(r.Frames) != 2 || r.Size != 5 {
		t.Errorf("handler saw %+v", r)
	}

	// The same connection still serves normal requests.
	if reply, err := c.Request(ctx, [][]byte{[]byte("ok")}); err != nil || string(reply[0]) != "re:ok" {
		t.Fatalf("after the oversized requests: %q, %v", reply, err)
	}
	if st := srv.Stats(); st.TooLarge != 2 || st.BadInput != 0 || st.Conns != 1 {
		t.Errorf("stats %+v", st)
	}

	// Beyond the hard cap: closed, no answer.
	huge := make([]byte, 17*maxFrame)
	if _, err := c.Request(ctx, [][]byte{huge}); err == nil {
		t.Error("a request beyond the hard cap was answered")
	}
	waitFor(t, 5*time.Second, "the bad input counted", func() bool { return srv.Stats().BadInput == 1 })
}
