package coord

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/proto/handshake"
)

// oversized is a request frame above the servers' 64 KiB MaxFrame.
const oversized = 100 << 10

// TestSyncAnswersOversizedRequest: a sync request above the frame limit
// gets the handshake's "malformed" error instead of a dropped connection,
// and the same connection still serves a request after it.
func TestSyncAnswersOversizedRequest(t *testing.T) {
	p := testPublisher(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := wire.NewClient(p.SyncEndpoint(), wire.ClientConfig{Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, frame := range [][]byte{bytes.Repeat([]byte(" "), oversized), []byte("not json")} {
		reply, err := c.Request(ctx, [][]byte{frame})
		if err != nil {
			t.Fatalf("request of %d bytes: %v", len(frame), err)
		}
		var refused *handshake.ErrorReply
		if _, err := handshake.DecodeReply(reply[0]); !errors.As(err, &refused) || refused.Code != handshake.CodeMalformed {
			t.Errorf("request of %d bytes: reply %s (%v), want a malformed error", len(frame), reply[0], err)
		}
	}
}

// TestRecoveryAnswersOversizedRequest: a FETCH above the frame limit gets
// an ERROR with code malformed that carries its request id, read from the
// first 8 bytes; one without a valid header gets id 0.
func TestRecoveryAnswersOversizedRequest(t *testing.T) {
	p := testPublisher(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := wire.NewClient(p.RecoveryEndpoint(), wire.ClientConfig{Type: zmq4.Dealer, Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	valid := fetch.EncodeRequest(nil, fetch.Request{ID: 42, From: 1, To: 2, Topic: "t"})
	for _, tc := range []struct {
		name  string
		frame []byte
		id    uint32
	}{
		{"valid-header", append(valid, make([]byte, oversized)...), 42},
		{"garbage", bytes.Repeat([]byte{0xee}, oversized), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := c.Request(ctx, [][]byte{tc.frame})
			if err != nil {
				t.Fatal(err)
			}
			r, err := fetch.DecodeResponse(reply)
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != fetch.TypeError || r.ID != tc.id || r.Error.Code != fetch.CodeMalformed {
				t.Errorf("response %+v, want ERROR malformed for id %d", r, tc.id)
			}
		})
	}
}
