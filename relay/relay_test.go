package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/recovery"
)

func loopbackPublisher(expect int) coord.PublisherConfig {
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	cfg.Expect = expect
	return cfg
}

// record is what a test subscriber saw: records by topic and sequence,
// losses with their cause, and the END.
type record struct {
	mu        sync.Mutex
	publisher envelope.ID
	epoch     uint64
	got       map[string][]uint64
	losses    []coord.Event
	ended     chan struct{}
}

func newRecord() *record {
	return &record{got: map[string][]uint64{}, ended: make(chan struct{})}
}

func (r *record) handle(ev coord.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Type {
	case coord.EventMessage:
		r.publisher, r.epoch = ev.Publisher, ev.Epoch
		r.got[ev.Topic] = append(r.got[ev.Topic], ev.Seq)
	case coord.EventLoss:
		r.losses = append(r.losses, ev)
	case coord.EventEnd:
		close(r.ended)
	}
}

// startRelay runs a relay of upstream with its own quorum of expect.
func startRelay(t *testing.T, ctx context.Context, upstream *coord.Publisher, expect int, id string) (*Relay, <-chan error) {
	t.Helper()
	r, err := New(Config{
		Upstream:   coord.SubscriberConfig{Connect: upstream.Endpoint(), Sync: upstream.SyncEndpoint(), ID: id},
		Downstream: loopbackPublisher(expect),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return r, done
}

// waitPublisher polls until the relay bound its downstream endpoints.
func waitPublisher(t testing.TB, ctx context.Context, r *Relay) *coord.Publisher {
	t.Helper()
	for {
		if p := r.Publisher(); p != nil {
			return p
		}
		select {
		case <-ctx.Done():
			t.Fatal("the relay never bound its downstream endpoints")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// publishAndEnd publishes n records of topic t on origin, ends its epoch
// and waits for the relay's Run (done) to return: both must succeed.
func publishAndEnd(t *testing.T, ctx context.Context, origin *coord.Publisher, n int, done <-chan error) {
	t.Helper()
	for i := range n {
		if _, err := origin.Publish(ctx, "t", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := origin.Shutdown(ctx); err != nil {
		t.Fatalf("origin: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
}

func subscribe(t *testing.T, pub *coord.Publisher, id string) (*coord.Subscriber, *record) {
	t.Helper()
	rec := newRecord()
	sub, err := coord.NewSubscriber(coord.SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: id, Handler: rec.handle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub, rec
}

// TestRelayForwardsTransparently: origin -> relay -> two subscribers. The
// subscribers see the origin's id, epoch and sequences, everything
// arrives, the relay confirms upstream only after both confirmed
// downstream, and every job ends ok.
func TestRelayForwardsTransparently(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	origin, err := coord.NewPublisher(loopbackPublisher(1))
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	r, done := startRelay(t, ctx, origin, 2, "relay-1")
	down := waitPublisher(t, ctx, r)
	if down.ID() != origin.ID() || down.Epoch() != origin.Epoch() {
		t.Fatalf("relay serves %s/%d, origin is %s/%d", down.ID(), down.Epoch(), origin.ID(), origin.Epoch())
	}
	subs := make([]*coord.Subscriber, 2)
	recs := make([]*record, 2)
	for i := range subs {
		subs[i], recs[i] = subscribe(t, down, fmt.Sprintf("sub-%d", i))
	}
	if err := origin.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	topics := []string{"a", "b", "c"}
	for i := range n {
		if _, err := origin.Publish(ctx, topics[i%len(topics)], []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := origin.Shutdown(ctx); err != nil {
		t.Fatalf("origin: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
	for i, rec := range recs {
		<-rec.ended
		if err := subs[i].Err(); err != nil {
			t.Errorf("sub-%d: %v", i, err)
		}
		rec.mu.Lock()
		if rec.publisher != origin.ID() || rec.epoch != origin.Epoch() {
			t.Errorf("sub-%d saw publisher %s epoch %d", i, rec.publisher, rec.epoch)
		}
		for _, topic := range topics {
			seqs := rec.got[topic]
			if len(seqs) != n/len(topics)+boolInt(topicIndex(topics, topic) < n%len(topics)) {
				t.Errorf("sub-%d topic %s: %d records", i, topic, len(seqs))
			}
			for j, s := range seqs {
				if s != uint64(j+1) {
					t.Fatalf("sub-%d topic %s: record %d has seq %d", i, topic, j, s)
				}
			}
		}
		rec.mu.Unlock()
	}
	if st := r.Stats(); st.Forwarded != n || st.Lost != 0 || st.Whole == 0 {
		t.Errorf("relay stats %+v", st)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func topicIndex(ts []string, t string) int {
	for i, x := range ts {
		if x == t {
			return i
		}
	}
	return -1
}

// TestLossKeepsItsCause: a range a relay reports lost (PublishLoss)
// reaches a subscriber as that range with that cause, not as a gap of
// its own, and the records after it arrive.
func TestLossKeepsItsCause(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := coord.NewPublisher(loopbackPublisher(1))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, rec := subscribe(t, pub, "sub")
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := pub.PublishSeq(ctx, "t", seq, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.PublishLoss(ctx, "t", 4, 6, recovery.CausePublisherOverflow); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishSeq(ctx, "t", 7, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishLoss(ctx, "t", 8, 9, recovery.CauseSlowConsumer); err != nil { // a lost tail
		t.Fatal(err)
	}
	if err := pub.PublishSeq(ctx, "t", 7, []byte("again")); !errors.Is(err, coord.ErrSequence) {
		t.Fatalf("a sequence already published: %v, want ErrSequence", err)
	}
	err = pub.Shutdown(ctx)
	var ee *coord.EndError
	if !errors.As(err, &ee) || ee.Lost["sub"] != 5 {
		t.Fatalf("shutdown: %v, want sub to confirm with 5 lost", err)
	}
	<-rec.ended
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := fmt.Sprint(rec.got["t"]); got != "[1 2 3 7]" {
		t.Errorf("got %s", got)
	}
	if len(rec.losses) != 2 {
		t.Fatalf("losses %+v", rec.losses)
	}
	for i, want := range []struct {
		from, to uint64
		cause    string
	}{{4, 6, "publisher-overflow"}, {8, 9, "slow-consumer"}} {
		l := rec.losses[i]
		if l.From != want.from || l.To != want.to || l.Cause != want.cause {
			t.Errorf("loss %d: %d-%d %s, want %d-%d %s", i, l.From, l.To, l.Cause, want.from, want.to, want.cause)
		}
	}
	var je *coord.JobError
	if !errors.As(sub.Err(), &je) || je.Outcome != coord.OutcomeLost {
		t.Errorf("subscriber: %v, want lost", sub.Err())
	}
}

// TestRelayForwardsLossWithItsCause: what the relay could not get
// upstream (the origin no longer held it) reaches its subscriber as a
// loss of the same range with the same cause, and the records after it
// with their sequences; the relay still ends downstream with END. The
// range was published before the relay joined, so neither the relay's
// BYE nor the leaf's counts it against the job (before-join).
func TestRelayForwardsLossWithItsCause(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := loopbackPublisher(0) // publishes at once, before the relay comes
	cfg.History.MaxMessages = 100
	cfg.MaxBatchRecords = 10 // the history drops whole batches, and keeps the newest
	origin, err := coord.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	for i := range 1000 {
		if _, err := origin.Publish(ctx, "t", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Publish returns once a record is accepted; the relay must join
	// after they went out (and the history let the oldest go), or it
	// would get them live.
	for origin.Stats().Published < 1000 {
		select {
		case <-ctx.Done():
			t.Fatal("the origin never sent what it accepted")
		case <-time.After(5 * time.Millisecond):
		}
	}
	r, err := New(Config{
		Upstream:   coord.SubscriberConfig{Connect: origin.Endpoint(), Sync: origin.SyncEndpoint(), ID: "relay", StartAt: coord.StartAtEarliest},
		Downstream: loopbackPublisher(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	down := waitPublisher(t, ctx, r)
	sub, rec := subscribe(t, down, "leaf")
	for r.Stats().Forwarded < 100 {
		select {
		case <-ctx.Done():
			t.Fatal("the relay forwarded nothing")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := origin.Shutdown(ctx); err != nil {
		t.Errorf("origin: %v", err)
	}
	var je *coord.JobError
	if err := <-done; !errors.As(err, &je) || je.Outcome != coord.OutcomeLost {
		t.Errorf("relay: %v, want the lost outcome a subscriber that lost records has", err)
	}
	<-rec.ended
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// The origin retains at least its last 100 records, in whole batches.
	if len(rec.losses) != 1 || rec.losses[0].From != 1 || rec.losses[0].To > 900 || rec.losses[0].Cause != "before-join" {
		t.Fatalf("losses %+v, want 1-n (n <= 900) before-join", rec.losses)
	}
	got := rec.got["t"]
	for i, seq := range got {
		if seq != rec.losses[0].To+1+uint64(i) {
			t.Fatalf("record %d has seq %d after the loss of 1-%d", i, seq, rec.losses[0].To)
		}
	}
	if len(got) == 0 || got[len(got)-1] != 1000 {
		t.Fatalf("got %d records, the last %v", len(got), got[max(0, len(got)-1):])
	}
	if !errors.As(sub.Err(), &je) || je.Outcome != coord.OutcomeLost {
		t.Errorf("leaf: %v, want lost", sub.Err())
	}
}

// TestRelayForwardsWhole: DATA messages that reach the relay live and in
// order go downstream as they came: a subscriber of the relay sees the
// origin's publish time on their records, as a direct subscriber does.
func TestRelayForwardsWhole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	origin, err := coord.NewPublisher(loopbackPublisher(2))
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	r, done := startRelay(t, ctx, origin, 1, "relay-1")
	down := waitPublisher(t, ctx, r)
	times := func() (func(coord.Event), map[uint64]int64, chan struct{}) {
		var mu sync.Mutex
		m := map[uint64]int64{}
		ended := make(chan struct{})
		return func(ev coord.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch ev.Type {
			case coord.EventMessage:
				m[ev.Seq] = ev.Time
			case coord.EventEnd:
				close(ended)
			}
		}, m, ended
	}
	hDirect, direct, endDirect := times()
	hLeaf, leaf, endLeaf := times()
	for _, s := range []struct {
		pub *coord.Publisher
		h   func(coord.Event)
	}{{origin, hDirect}, {down, hLeaf}} {
		sub, err := coord.NewSubscriber(coord.SubscriberConfig{Connect: s.pub.Endpoint(), Sync: s.pub.SyncEndpoint(), Handler: s.h})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}
	if err := origin.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	publishAndEnd(t, ctx, origin, n, done)
	<-endDirect
	<-endLeaf
	if len(direct) != n || len(leaf) != n {
		t.Fatalf("direct got %d, leaf %d, want %d", len(direct), len(leaf), n)
	}
	same := 0
	for seq, tm := range leaf {
		if direct[seq] == tm {
			same++
		}
	}
	st := r.Stats()
	if st.Whole == 0 || same < int(st.Whole) {
		t.Fatalf("%d messages forwarded whole, %d of %d records with the origin's time", st.Whole, same, n)
	}
	t.Logf("%d messages forwarded whole; %d of %d records carry the origin's time", st.Whole, same, n)
}
