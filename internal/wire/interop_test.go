package wire

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// These tests pin interoperability with zmq4's own sockets, which speak the
// same ZMTP as libzmq: our sockets must be drop-in peers.

func TestPubToZmq4Sub(t *testing.T) {
	pub, err := Listen("tcp://127.0.0.1:0", PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub := zmq4.NewSub(ctx)
	defer sub.Close()
	if err := sub.SetOption(zmq4.OptionSubscribe, "a"); err != nil {
		t.Fatal(err)
	}
	if err := sub.Dial(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "subscription", func() bool {
		s := *pub.snap.Load()
		return len(s) == 1 && s[0].subs.match([]byte("a"))
	})
	for i := 0; i < 100; i++ {
		topic := "a"
		if i%2 == 1 {
			topic = "b"
		}
		m := &Msg{Frames: [][]byte{[]byte(topic), []byte(fmt.Sprint(i))}}
		if err := pub.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i += 2 {
		msg, err := sub.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(msg.Frames[1]); got != fmt.Sprint(i) || string(msg.Frames[0]) != "a" {
			t.Fatalf("got %q %q, want a %d", msg.Frames[0], got, i)
		}
	}
}

func TestSubFromZmq4Pub(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	zpub := zmq4.NewPub(ctx)
	defer zpub.Close()
	if err := zpub.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	sub := NewSub(SubConfig{}, "x")
	defer sub.Close()
	if err := sub.Connect("tcp://" + zpub.Addr().String()); err != nil {
		t.Fatal(err)
	}
	d, err := sub.Recv(ctx)
	if err != nil || d.Kind != Connected {
		t.Fatalf("got %+v %v, want Connected", d, err)
	}
	waitFor(t, 5*time.Second, "subscription", func() bool {
		return len(zpub.(zmq4.Topics).Topics()) == 1
	})
	for i := 0; i < 10; i++ {
		if err := zpub.Send(zmq4.NewMsgFrom([]byte("xy"), []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		d, err := sub.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != Message || string(d.Frames[1]) != fmt.Sprint(i) {
			t.Fatalf("got %+v", d)
		}
	}
}

func TestClientServerInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := Serve("tcp://127.0.0.1:0", ServerConfig{}, func(ctx context.Context, req Request, reply func(...[]byte) error) error {
		return reply(append([]byte("re:"), req.Frames[0]...))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// zmq4's REQ against our server.
	req := zmq4.NewReq(ctx)
	defer req.Close()
	if err := req.Dial(srv.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := req.Send(zmq4.NewMsgString("hi")); err != nil {
		t.Fatal(err)
	}
	msg, err := req.Recv()
	if err != nil || string(msg.Frames[0]) != "re:hi" {
		t.Fatalf("zmq4 REQ got %q, %v", msg.Frames, err)
	}

	// Our client against our server, REQ and DEALER flavours.
	for _, typ := range []zmq4.SocketType{zmq4.Req, zmq4.Dealer} {
		c, err := NewClient(srv.Endpoint(), ClientConfig{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		reply, err := c.Request(ctx, [][]byte{[]byte("yo")})
		c.Close()
		if err != nil || string(reply[0]) != "re:yo" {
			t.Fatalf("%s client got %q, %v", typ, reply, err)
		}
	}

	// Our REQ client against zmq4's REP.
	rep := zmq4.NewRep(ctx)
	defer rep.Close()
	if err := rep.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go func() {
		msg, err := rep.Recv()
		if err == nil {
			_ = rep.Send(zmq4.NewMsgFrom(append([]byte("rep:"), msg.Frames[0]...)))
		}
	}()
	c, _ := NewClient("tcp://"+rep.Addr().String(), ClientConfig{Timeout: 3 * time.Second})
	defer c.Close()
	reply, err := c.Request(ctx, [][]byte{[]byte("q")})
	if err != nil || string(reply[0]) != "rep:q" {
		t.Fatalf("client vs zmq4 REP got %q, %v", reply, err)
	}
}
