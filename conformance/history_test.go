package conformance

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/fetch"
)

// TestDoneBoundsUnderLoad asks for the start of a topic again and again
// while the publisher publishes flat out into a history of 50 records:
// every DONE must be consistent (first held at most the last published;
// 1.0 once answered partial with first held above last), and every
// REPLAY of a partial answer must start at or after first held.
func TestDoneBoundsUnderLoad(t *testing.T) {
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	cfg.Expect = 0
	cfg.History.MaxMessages = 50
	cfg.MaxBatchRecords = 7
	cfg.RecoveryLimit.RequestRate, cfg.RecoveryLimit.RequestBurst = 1e6, 1e6 // not the limit under test
	pub, err := coord.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pubCtx, stopPub := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2_000_000 && pubCtx.Err() == nil; i++ {
			if _, err := pub.Publish(pubCtx, "t", []byte("x")); err != nil {
				return
			}
		}
	}()
	defer func() { stopPub(); wg.Wait() }()

	c, err := wire.NewClient(pub.RecoveryEndpoint(), wire.ClientConfig{Type: zmq4.Dealer, Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	partial := 0
	for i := uint32(1); i <= 2000; i++ {
		req := fetch.EncodeRequest(nil, fetch.Request{ID: i, Publisher: pub.ID(), Epoch: pub.Epoch(), From: 1, To: 200, Topic: "t"})
		var firstReplayed uint64
		var done fetch.Done
		err := c.Stream(ctx, [][]byte{req}, func(frames [][]byte) (bool, error) {
			r, err := fetch.DecodeResponse(frames) // rejects a DONE with first held above last
			if err != nil {
				return true, err
			}
			switch r.Type {
			case fetch.TypeReplay:
				if firstReplayed == 0 {
					firstReplayed = r.Message.Seq
				}
				return false, nil
			case fetch.TypeDone:
				done = r.Done
				return true, nil
			}
			return true, errors.New("unexpected " + r.Type.String())
		})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if done.Status == fetch.StatusPartial {
			partial++
			if done.FirstHeld == 0 || done.FirstHeld > done.LastSeq || (firstReplayed != 0 && firstReplayed+uint64(cfg.MaxBatchRecords) <= done.FirstHeld) {
				t.Fatalf("request %d: partial DONE %+v, first replayed %d", i, done, firstReplayed)
			}
		}
		if partial >= 200 {
			break
		}
	}
	if partial == 0 {
		t.Fatal("no partial answer: the history never moved past the start")
	}
}

// TestOtherEnvelopeVersionIsCounted: a subscriber drops an envelope of a
// version it does not speak and counts it in OtherVersion (and Malformed).
func TestOtherEnvelopeVersionIsCounted(t *testing.T) {
	p, err := wire.Listen("tcp://127.0.0.1:0", wire.PubConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sub, err := coord.NewSubscriber(coord.SubscriberConfig{Connect: p.Endpoint(), Sync: "tcp://127.0.0.1:1", ID: "v", Handler: func(coord.Event) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	frames, _ := envelope.Encode(nil, envelope.ControlTopic, envelope.Header{Kind: envelope.KindHeartbeat, Epoch: 1}, envelope.AppendTable(nil, nil))
	frames[1][2] = 2 // version 2
	for sub.Stats().OtherVersion == 0 {
		if err := p.Send(ctx, &wire.Msg{Frames: frames[:]}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the version 2 envelope was never counted")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if st := sub.Stats(); st.Malformed < st.OtherVersion || st.Received != 0 {
		t.Fatalf("stats %+v", st)
	}
}
