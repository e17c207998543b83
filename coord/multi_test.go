package coord

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/handshake"
)

// orderRecorder is a Handler that keeps every record's topic and sequence
// in the order they were delivered, and closes done at END.
type orderRecorder struct {
	mu     sync.Mutex
	got    []string
	losses []Event
	replay int
	done   chan struct{}
}

func newOrderRecorder() *orderRecorder { return &orderRecorder{done: make(chan struct{})} }

func (r *orderRecorder) handle(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Type {
	case EventMessage:
		r.got = append(r.got, fmt.Sprintf("%s/%d=%s", ev.Topic, ev.Seq, ev.Payload))
		if ev.Replay {
			r.replay++
		}
	case EventLoss:
		r.losses = append(r.losses, ev)
	case EventEnd:
		close(r.done)
	}
}

func (r *orderRecorder) records() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// rawSub is a subscriber written from docs/protocol.md alone, on the bare
// wire: it handshakes accepting forms, and keeps the kind of every data
// message and every record in arrival order until END.
type rawSub struct {
	kinds map[envelope.Kind]int
	got   []string
	done  chan struct{}
	err   error
}

func startRawSub(t *testing.T, ctx context.Context, p *Publisher, id string, forms []string, prefixes ...string) *rawSub {
	t.Helper()
	sub := wire.NewSub(wire.SubConfig{}, append(prefixes, envelope.ControlTopic)...)
	t.Cleanup(func() { sub.Close() })
	if err := sub.Connect(p.Endpoint()); err != nil {
		t.Fatal(err)
	}
	client, err := wire.NewClient(p.SyncEndpoint(), wire.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	r := &rawSub{kinds: map[envelope.Kind]int{}, done: make(chan struct{})}
	joined := make(chan struct{})
	var bye handshake.Ready
	go func() {
		defer close(r.done)
		for {
			d, err := sub.Recv(ctx)
			if err != nil {
				r.err = err
				return
			}
			if d.Kind != wire.Message {
				continue
			}
			m, err := envelope.Decode(d.Frames, envelope.Limits{})
			if err != nil {
				r.err = err
				return
			}
			r.kinds[m.Kind]++
			switch m.Kind {
			case envelope.KindHello:
				ready := handshake.Ready{V: handshake.Version, Type: handshake.TypeReady, Subscriber: id,
					Publisher: m.Publisher.String(), Epoch: m.Epoch, Nonce: hex.EncodeToString(m.Payload), Forms: forms}
				reply, err := client.Request(ctx, [][]byte{handshake.Encode(ready)})
				if err != nil {
					r.err = err
					return
				}
				if _, err := handshake.DecodeReply(reply[0]); err != nil {
					r.err = err
					return
				}
				bye = ready
				bye.Type, bye.Forms = handshake.TypeBye, nil
				close(joined)
			case envelope.KindData:
				for seq, p := range m.Records() {
					r.got = append(r.got, fmt.Sprintf("%s/%d=%s", m.Topic, seq, p))
				}
			case envelope.KindMulti:
				table := m.MultiTopics(nil)
				next := make([]uint64, len(table))
				for i, e := range table {
					next[i] = e.First
				}
				for e, p := range m.MultiRecords() {
					r.got = append(r.got, fmt.Sprintf("%s/%d=%s", table[e].Topic, next[e], p))
					next[e]++
				}
			case envelope.KindEnd:
				// Everything came in order: confirm it, so the
				// publisher's job ends successfully.
				if _, err := client.Request(ctx, [][]byte{handshake.Encode(bye)}); err != nil {
					r.err = err
				}
				return
			}
		}
	}()
	select {
	case <-joined:
	case <-r.done:
		t.Fatalf("raw subscriber %s: %v", id, r.err)
	case <-ctx.Done():
		t.Fatalf("raw subscriber %s never joined", id)
	}
	return r
}

// TestFormsSideBySide publishes round-robin over topics while subscribers
// of both forms are joined: ours accepting MULTI, ours reading DATA only,
// a narrow one (its prefix does not cover every topic, so DATA), and two
// written from the spec, one per form. Each gets exactly the records its
// subscriptions match, in the publisher's order across topics, and only
// the connections that accepted MULTI see one.
func TestFormsSideBySide(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := testPublisher(t, func(c *PublisherConfig) {
		c.Expect = 5
		c.Linger = 2 * time.Millisecond // batches of several topics even on a fast machine
	})
	multi, dataOnly, narrow := newOrderRecorder(), newOrderRecorder(), newOrderRecorder()
	testSubscriber2(t, SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "multi"}, multi.handle)
	testSubscriber2(t, SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "data", dataOnly: true}, dataOnly.handle)
	testSubscriber2(t, SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "narrow", Subscribe: []string{"t1"}}, narrow.handle)
	raw10 := startRawSub(t, ctx, p, "raw-1.0", nil, "")
	raw11 := startRawSub(t, ctx, p, "raw-1.1", []string{handshake.FormMulti}, "")
	if err := p.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, 30*time.Second, "two connections on the MULTI form", func() bool { return p.Stats().MultiConns == 2 })

	const n, topics = 3000, 7
	var want, wantNarrow []string
	for i := 0; i < n; i++ {
		topic := fmt.Sprintf("t%d", i%topics)
		payload := fmt.Sprint(i)
		if _, err := p.Publish(ctx, topic, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		rec := fmt.Sprintf("%s/%d=%s", topic, i/topics+1, payload)
		want = append(want, rec)
		if topic == "t1" {
			wantNarrow = append(wantNarrow, rec)
		}
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*orderRecorder{"multi": multi, "data-only": dataOnly, "narrow": narrow} {
		select {
		case <-r.done:
		case <-ctx.Done():
			t.Fatalf("%s: no END", name)
		}
		w := want
		if name == "narrow" {
			w = wantNarrow
		}
		if got := r.records(); !slices.Equal(got, w) || len(r.losses) > 0 {
			t.Errorf("%s: %d records (losses %v), want %d in publish order", name, len(got), r.losses, len(w))
		}
	}
	for name, r := range map[string]*rawSub{"raw 1.0": raw10, "raw 1.1": raw11} {
		<-r.done
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		if !slices.Equal(r.got, want) {
			t.Errorf("%s: %d records, want %d in publish order", name, len(r.got), len(want))
		}
	}
	if raw10.kinds[envelope.KindMulti] != 0 {
		t.Errorf("the 1.0 subscriber got %d MULTI messages", raw10.kinds[envelope.KindMulti])
	}
	st := p.Stats()
	if raw11.kinds[envelope.KindMulti] == 0 || st.Multi == 0 {
		t.Errorf("no MULTI sent (%d batches, %d MULTI; the 1.1 subscriber saw %v)", st.Batches, st.Multi, raw11.kinds)
	}
	t.Logf("%d records in %d batches, %d of them MULTI", st.Published, st.Batches, st.Multi)
}

// TestMultiReplay: a late joiner repairs round-robin traffic that went out
// as MULTI from the history, which keeps each topic's runs as DATA.
func TestMultiReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := testPublisher(t, func(c *PublisherConfig) { c.Expect = 1; c.Linger = time.Millisecond })
	first := newOrderRecorder()
	testSubscriber2(t, SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "first"}, first.handle)
	if err := p.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	const n, topics = 2000, 5
	for i := 0; i < n; i++ {
		if _, err := p.Publish(ctx, fmt.Sprintf("t%d", i%topics), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.WaitFor(t, 30*time.Second, "everything sent", func() bool { return p.Stats().Published == n })
	late := newOrderRecorder()
	testSubscriber2(t, SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "late", StartAt: StartAtEarliest}, late.handle)
	clustertest.WaitFor(t, 30*time.Second, "the late joiner replayed everything", func() bool {
		late.mu.Lock()
		defer late.mu.Unlock()
		return late.replay == n
	})
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-late.done
	got := late.records()
	if len(got) != n || len(late.losses) > 0 {
		t.Fatalf("late joiner: %d records, losses %v", len(got), late.losses)
	}
	// Replays come topic by topic; within a topic, in sequence.
	per := map[string][]string{}
	for _, r := range got {
		var topic string
		var seq int
		var payload string
		fmt.Sscanf(r, "%2s/%d=%s", &topic, &seq, &payload)
		per[topic] = append(per[topic], r)
	}
	for i := 0; i < topics; i++ {
		topic := fmt.Sprintf("t%d", i)
		for j, r := range per[topic] {
			if want := fmt.Sprintf("%s/%d=%d", topic, j+1, j*topics+i); r != want {
				t.Fatalf("%s record %d: %q, want %q", topic, j, r, want)
			}
		}
	}
	if p.Stats().Multi == 0 {
		t.Error("no MULTI was sent, so the history was not fed from one")
	}
}

func testSubscriber2(t *testing.T, cfg SubscriberConfig, h func(Event)) *Subscriber {
	t.Helper()
	cfg.Handler = h
	s, err := NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
