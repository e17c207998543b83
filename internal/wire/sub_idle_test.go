package wire

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// TestSubIdleTimeoutReconnects: a publisher that completed the handshake
// and then went silent (its host died, or a partition made it drop us
// while our side of TCP still looks open) is dropped after IdleTimeout and
// dialled again, instead of waiting for TCP keepalive.
func TestSubIdleTimeoutReconnects(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	ep := silentListener(t, func(nc net.Conn, _ <-chan struct{}) {
		_, _ = handshake(nc, zmq4.Pub, nil, true, 2*time.Second) // then say nothing
	})
	const idle = 300 * time.Millisecond
	s := NewSub(SubConfig{IdleTimeout: idle, ReconnectMin: 10 * time.Millisecond}, "")
	defer s.Close()
	if err := s.Connect(ep); err != nil {
		t.Fatal(err)
	}
	var kinds []DeliveryKind
	var connectedAt, droppedAt time.Time
	for len(kinds) < 3 {
		d, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", kinds, err)
		}
		kinds = append(kinds, d.Kind)
		switch d.Kind {
		case Connected:
			if connectedAt.IsZero() {
				connectedAt = time.Now()
			}
		case Disconnected:
			droppedAt = time.Now()
			var ne net.Error
			if !errors.As(d.Err, &ne) || !ne.Timeout() {
				t.Errorf("disconnect error %v, want a read timeout", d.Err)
			}
		}
	}
	if kinds[0] != Connected || kinds[1] != Disconnected || kinds[2] != Connected {
		t.Fatalf("deliveries %v, want connected, disconnected, connected", kinds)
	}
	if quiet := droppedAt.Sub(connectedAt); quiet < idle || quiet > idle+idle/4+time.Second {
		t.Errorf("dropped after %v of silence, want about %v", quiet, idle)
	}
}

// TestSubIdleTimeoutKeepsBusyConnection: a connection that keeps
// delivering is never dropped, even with a consumer slower than the
// timeout between two reads.
func TestSubIdleTimeoutKeepsBusyConnection(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	pub, err := Listen("tcp://127.0.0.1:0", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const idle = 200 * time.Millisecond
	s := NewSub(SubConfig{IdleTimeout: idle}, "")
	defer s.Close()
	if err := s.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("first delivery %v %v", d.Kind, err)
	}
	if !pollUntil(5*time.Second, func() bool { return pub.Stats().Peers == 1 }) {
		t.Fatal("subscriber never connected")
	}
	tick := time.NewTicker(idle / 4)
	defer tick.Stop()
	received := 0
	for i := 0; i < 20; i++ { // 20 × idle/4: five idle timeouts
		<-tick.C
		if err := pub.Send(context.Background(), &Msg{Frames: [][]byte{[]byte("x")}}); err != nil {
			t.Fatal(err)
		}
	drain:
		for {
			select {
			case d := <-s.Deliveries():
				if d.Kind != Message {
					t.Fatalf("tick %d: got kind %v (%v)", i, d.Kind, d.Err)
				}
				received++
			default:
				break drain
			}
		}
	}
	if received < 10 {
		t.Fatalf("received %d of 20 messages", received)
	}
}
