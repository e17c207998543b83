package wire

import (
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
	t.Logf("dropped after %v of silence (IdleTimeout %v)", droppedAt.Sub(connectedAt).Round(time.Millisecond), idle)
}

// TestSubIdleTimeoutKeepsBusyConnection: a connection that keeps
// delivering is never dropped, though it lives for many idle timeouts
// (the read deadline moves with the traffic). Each message is sent once
// the previous one arrived and a tenth of the timeout passed, so the
// connection is never quiet for long however busy the machine is.
func TestSubIdleTimeoutKeepsBusyConnection(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	subscribed := make(chan struct{}, 1)
	pub, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: func(ev PeerEvent) {
		if ev.Type == PeerSubscribed {
			subscribed <- struct{}{}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const idle = 500 * time.Millisecond
	s := NewSub(SubConfig{IdleTimeout: idle}, "")
	defer s.Close()
	if err := s.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("first delivery %v %v", d.Kind, err)
	}
	select {
	case <-subscribed:
	case <-ctx.Done():
		t.Fatal("never subscribed")
	}
	tick := time.NewTicker(idle / 10)
	defer tick.Stop()
	const n = 40 // 40 × idle/10: four idle timeouts at least
	for i := 0; i < n; i++ {
		<-tick.C
		if err := pub.Send(ctx, &Msg{Frames: [][]byte{[]byte("x"), []byte{byte(i)}}}); err != nil {
			t.Fatal(err)
		}
		d, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != Message || d.Frames[1][0] != byte(i) {
			t.Fatalf("message %d: got kind %v %q (%v)", i, d.Kind, d.Frames, d.Err)
		}
	}
}
