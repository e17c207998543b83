package coord

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/clustertest"
)

// TestDurablePublisherCrashLosesNothing: a publisher with a journal is
// stopped the way a crash would stop it, after its last 500 messages were
// handed to the socket but never reached the subscriber, and the recovery
// endpoint was cut so nothing could be repaired before the crash. It
// comes back from the same directory with a new epoch; the subscriber
// asks it for the old epoch's rest and gets it: every message of both
// epochs is delivered, in order, and nothing is reported lost.
func TestDurablePublisherCrashLosesNothing(t *testing.T) {
	dir := t.TempDir()
	pubPort, syncPort, recPort := clustertest.FreePort(t), clustertest.FreePort(t), clustertest.FreePort(t)
	start := func() *Publisher {
		return testPublisher(t, func(c *PublisherConfig) {
			c.DataDir = dir
			c.MaxBatchRecords = 1 // so exactly the last 500 records can be dropped
			c.Bind, c.SyncBind, c.RecoveryBind = clustertest.Endpoint(pubPort), clustertest.Endpoint(syncPort), clustertest.Endpoint(recPort)
		})
	}
	old := start()
	id, oldEpoch := old.ID(), old.Epoch()
	pubProxy := clustertest.NewProxy(t, old.Endpoint())
	recProxy := clustertest.NewProxy(t, old.RecoveryEndpoint())
	const n = 5000
	pubProxy.SetDrop(func(frames [][]byte) bool { // the old epoch's last 500 never arrive
		h, err := envelope.ParseHeader(frames[1%len(frames)])
		return err == nil && h.Kind == envelope.KindData && h.Epoch == oldEpoch && h.LastSeq() > n-500
	})
	recProxy.Cut()
	rec := newRecorder(0)
	sub := testSubscriber(t, SubscriberConfig{Connect: pubProxy.Endpoint(), Sync: clustertest.Endpoint(syncPort), Recovery: recProxy.Endpoint()}, rec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	publishN(t, old, "t", 1, n, make([]byte, 16))
	clustertest.WaitFor(t, 10*time.Second, "all 5,000 sent, the first 4,500 received", func() bool {
		got, _ := rec.counts()
		return got == n-500 && old.Stats().Published == n
	})
	old.Close()
	recProxy.Heal()
	restarted := start()
	if restarted.ID() != id || restarted.Epoch() <= oldEpoch {
		t.Fatalf("restart: id %v epoch %d, want id %v and an epoch above %d", restarted.ID(), restarted.Epoch(), id, oldEpoch)
	}
	if err := restarted.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	publishN(t, restarted, "t", 1, 100, make([]byte, 16))
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := rec.counts()
		if got == n+100 {
			break
		}
		if time.Now().After(deadline) {
			_, losses, errs, _ := rec.snapshot()
			t.Fatalf("received %d of %d; losses %v errs %v; stats %+v; pub %+v", got, n+100, losses, errs, sub.Stats(), restarted.Stats().Recovery)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, losses, errs, _ := rec.snapshot()
	if len(errs) > 0 || len(losses) > 0 {
		t.Fatalf("order errors %v, losses %v: want none", errs, losses)
	}
	if st := sub.Stats(); st.Lost != 0 || st.UnknownTails != 0 || st.Recovered < 500 {
		t.Fatalf("subscriber stats %+v: want the old epoch's 500 recovered, nothing lost", st)
	}
}

// TestSubscriberStateResumes: a subscriber with a StateDir stops in the
// middle of a stream; one started on the same directory resumes after
// the last record the first delivered, and the two together deliver every
// record once (a Close writes the checkpoint of everything delivered).
func TestSubscriberStateResumes(t *testing.T) {
	p := testPublisher(t, func(c *PublisherConfig) { c.Expect = 1 })
	dir := t.TempDir()
	const n, stopAt = 10_000, 3000
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var first atomic.Pointer[Subscriber]
	stopped := make(chan struct{})
	sub, err := NewSubscriber(SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "s", StateDir: dir,
		Handler: func(ev Event) {
			if ev.Type == EventMessage && ev.Seq == stopAt {
				first.Load().Close() // from the Handler: nothing after this one is handed over
				close(stopped)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	first.Store(sub)
	if err := p.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if _, err := p.Publish(ctx, "t", []byte("x")); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	<-stopped
	sub.Close()
	rec := newRecorder(0)
	testSubscriber(t, SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "s", StateDir: dir}, rec)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, 30*time.Second, "the rest delivered", func() bool {
		got, _ := rec.counts()
		return got >= n-stopAt
	})
	_, losses, errs, _ := rec.snapshot()
	if len(losses) > 0 || len(errs) > 0 {
		t.Fatalf("losses %v errors %v", losses, errs)
	}
	// The checkpoint is written after the Handler returns, so the record
	// whose Handler closed the subscriber is delivered again: at least
	// once, repeating at most what was being handed over.
	if got, _ := rec.counts(); got != n-stopAt+1 {
		t.Fatalf("the second subscriber delivered %d, want the %d from the first's last on", got, n-stopAt+1)
	}
}

// TestKeepFailingWhileTheJournalRefuses: while the journal refuses
// batches (here it was closed under the publisher, as a full disk
// refuses them), Stats says publishing has stalled, so that readiness
// can say so, and nothing the journal did not keep is sent.
func TestKeepFailingWhileTheJournalRefuses(t *testing.T) {
	pub := testPublisher(t, func(c *PublisherConfig) { c.DataDir, c.Expect = t.TempDir(), 0 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pub.Publish(ctx, "t", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, 10*time.Second, "the first record sent", func() bool { return pub.Stats().Published == 1 })
	if st := pub.Stats(); st.KeepFailing {
		t.Fatal("KeepFailing before any failure")
	}
	if err := pub.store.(*journalStore).j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "t", []byte("refused")); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, 10*time.Second, "KeepFailing", func() bool { return pub.Stats().KeepFailing })
	if st := pub.Stats(); st.Published != 1 || st.KeepFailed == 0 {
		t.Fatalf("published %d, keep failed %d times: want 1 sent and the failure counted", st.Published, st.KeepFailed)
	}
}
