package coord

import (
	"context"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/recovery"
)

// slowQueues are queues small enough that a subscriber whose handler
// pauses now and then falls behind at once.
func slowQueues(cfg *PublisherConfig) {
	cfg.Wire.QueueBytes, cfg.Wire.MaxQueueBytes, cfg.Wire.SendBuffer = 16<<10, 256<<10, 16<<10
}

// slowHandler is rec's handler, pausing 2 ms every 200 records: a reader
// about ten times slower than the publisher.
func slowHandler(rec *recorder) func(Event) {
	n := 0
	return func(ev Event) {
		rec.handle(ev)
		if ev.Type == EventMessage {
			if n++; n%200 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
}

// runSlowAndFast publishes total records of size bytes to one fast and
// one slow subscriber under policy, ends the epoch and returns what
// Shutdown said, with the publisher and both recorders.
func runSlowAndFast(t *testing.T, policy SlowPolicy, total, size int, mod func(*PublisherConfig)) (*Publisher, *recorder, *recorder, error) {
	t.Helper()
	pub := testPublisher(t, func(cfg *PublisherConfig) {
		cfg.Expect, cfg.SlowPolicy = 2, policy
		slowQueues(cfg)
		if mod != nil {
			mod(cfg)
		}
	})
	fast, slow := newRecorder(0), newRecorder(0)
	testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "fast"}, fast)
	sc := SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "slow", Handler: slowHandler(slow)}
	s, err := NewSubscriber(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pub.WaitQuorum(ctx); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, size)
	for i := 0; i < total; i++ {
		if _, err := pub.Publish(ctx, "t", payload); err != nil {
			t.Fatal(err)
		}
	}
	err = pub.Shutdown(ctx)
	fast.wait(t, ctx, "fast")
	slow.wait(t, ctx, "slow")
	return pub, fast, slow, err
}

// TestSlowSubscriberCatchesUp: under catch-up, a subscriber ten times
// slower than the publisher is taken off the live stream, fed from the
// history at its pace and given every record in order; nobody is cut as
// a slow consumer, and the job succeeds.
func TestSlowSubscriberCatchesUp(t *testing.T) {
	const total = 20_000
	pub, fast, slow, err := runSlowAndFast(t, SlowCatchUp, total, 256, nil)
	if err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	fast.check(t, "fast", total)
	slow.check(t, "slow", total)
	st := pub.Stats()
	t.Logf("catch-ups %d (merged back %d), %d bytes from the history; slow consumers %d",
		st.CatchUps, st.CatchUpsMerged, st.CatchUpBytes, st.Wire.SlowConsumers)
	if st.CatchUps == 0 || st.CatchUpBytes == 0 {
		t.Errorf("no catch-up: %+v", st)
	}
	if st.Wire.SlowConsumers != 0 {
		t.Errorf("%d slow consumers cut under catch-up", st.Wire.SlowConsumers)
	}
	if _, replayed := slow.counts(); replayed != 0 {
		t.Errorf("the slow subscriber repaired %d records over the recovery channel; catch-up feeds them on its data connection", replayed)
	}
}

// TestSlowPolicies: wait lets the slowest set the pace (nobody is cut,
// nobody catches up); cut disconnects the slow subscriber, as before.
func TestSlowPolicies(t *testing.T) {
	const total = 20_000
	t.Run("wait", func(t *testing.T) {
		pub, fast, slow, err := runSlowAndFast(t, SlowWait, total, 256, nil)
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		fast.check(t, "fast", total)
		slow.check(t, "slow", total)
		st := pub.Stats()
		if st.CatchUps != 0 || st.Wire.SlowConsumers != 0 || st.Wire.Waits == 0 {
			t.Errorf("wait: catch-ups %d, slow consumers %d, waits %d", st.CatchUps, st.Wire.SlowConsumers, st.Wire.Waits)
		}
	})
	t.Run("cut", func(t *testing.T) {
		pub, _, _, _ := runSlowAndFast(t, SlowCut, total, 256, func(cfg *PublisherConfig) {
			cfg.Wire.MaxQueueBytes = 32 << 10
		})
		st := pub.Stats()
		if st.CatchUps != 0 || st.Wire.SlowConsumers == 0 {
			t.Errorf("cut: catch-ups %d, slow consumers %d", st.CatchUps, st.Wire.SlowConsumers)
		}
	})
}

// TestSlowSubscriberCatchesUpFromJournal: the same, with the history on
// disk: the cursor reads the journal.
func TestSlowSubscriberCatchesUpFromJournal(t *testing.T) {
	const total = 20_000
	dir := t.TempDir()
	pub, fast, slow, err := runSlowAndFast(t, SlowCatchUp, total, 256, func(cfg *PublisherConfig) { cfg.DataDir = dir })
	if err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	fast.check(t, "fast", total)
	slow.check(t, "slow", total)
	st := pub.Stats()
	if st.CatchUps == 0 || st.CatchUpBytes == 0 || st.Wire.SlowConsumers != 0 {
		t.Errorf("catch-ups %d, bytes %d, slow consumers %d", st.CatchUps, st.CatchUpBytes, st.Wire.SlowConsumers)
	}
}

// TestLingerAfterEndServesLateJoiners: with LingerAfterEnd, a publisher
// nobody joined keeps serving after END; a subscriber that comes then
// joins and gets every record from the earliest and END, while Shutdown
// still lingers. Without it, Shutdown returns at END.
func TestLingerAfterEndServesLateJoiners(t *testing.T) {
	const total = 2_000
	pub := testPublisher(t, func(cfg *PublisherConfig) { cfg.LingerAfterEnd = time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	publishN(t, pub, "t", 1, total, make([]byte, 64))
	shut := make(chan error, 1)
	go func() { shut <- pub.Shutdown(ctx) }()
	clustertest.WaitFor(t, 10*time.Second, "END", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return pub.core.phase == phaseEnded
	})
	late := newRecorder(0)
	testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "late", StartAt: StartAtEarliest}, late)
	late.wait(t, ctx, "late joiner")
	late.check(t, "late joiner", total)
	// The history is offered on the data connection. On a busy machine
	// the END that comes with the HELLO can be handled after the ACK,
	// before the first replayed record: the subscriber then takes it for
	// a gap and fetches the range instead (every record still arrives
	// once, in order). So the catch-up is checked, not the absence of a
	// FETCH.
	if st := pub.Stats(); st.CatchUps == 0 {
		t.Errorf("catch-ups %d, recovery requests %d: want the history on the data connection after END too", st.CatchUps, st.Recovery.Served)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before LingerAfterEnd passed", err)
	default:
	}
	pub.Close()
	<-shut

	plain := testPublisher(t, nil)
	publishN(t, plain, "t", 1, 10, nil)
	if err := plain.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown without LingerAfterEnd: %v", err)
	}
}

// TestLateJoinerCatchesUpOnItsDataConnection: a subscriber that joins
// after 20,000 records and starts at the earliest is fed them on its data
// connection (its READY's from, granted in the ACK), with no FETCH, then
// goes on with the live stream; from memory and from the journal.
func TestLateJoinerCatchesUpOnItsDataConnection(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "journal"}[disk], func(t *testing.T) {
			const before, after = 20_000, 1_000
			pub := testPublisher(t, func(cfg *PublisherConfig) {
				if disk {
					cfg.DataDir = t.TempDir()
				}
			})
			publishN(t, pub, "t", 1, before, make([]byte, 100))
			late := newRecorder(before + after)
			sub := testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "late", StartAt: StartAtEarliest}, late)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := sub.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			publishN(t, pub, "t", before+1, after, make([]byte, 100))
			late.wait(t, ctx, "late joiner")
			late.check(t, "late joiner", before+after)
			st := pub.Stats()
			if st.CatchUps == 0 || st.Recovery.Served != 0 {
				t.Errorf("catch-ups %d, recovery requests served %d: want the history on the data connection", st.CatchUps, st.Recovery.Served)
			}
		})
	}
}

// TestRejoinCatchesUpOnItsDataConnection: a joined subscriber loses its
// data connection (a cut, or a failover to another relay of the same
// stream) while 5,000 records go out. Its READY on the new connection
// says where its stream stands, and the publisher feeds what it missed
// on the data connection, as for a late joiner: no FETCH, so no replay
// budget meant for strangers. Before, every rejoin repaired over the
// recovery endpoint.
func TestRejoinCatchesUpOnItsDataConnection(t *testing.T) {
	const before, during = 1_000, 5_000
	pub := testPublisher(t, func(cfg *PublisherConfig) {
		// No heartbeat between the ACK and the catch-up's start: it
		// would reveal the gap first, and a FETCH would race the feed.
		cfg.HeartbeatInterval = time.Minute
	})
	proxy := clustertest.NewProxy(t, pub.Endpoint())
	rec := newRecorder(before + during)
	sub := testSubscriber(t, SubscriberConfig{Connect: proxy.Endpoint(), Sync: pub.SyncEndpoint(), Recovery: pub.RecoveryEndpoint(), ID: "mover"}, rec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, "t", 1, before, make([]byte, 100))
	clustertest.WaitFor(t, 30*time.Second, "the first records", func() bool { got, _ := rec.counts(); return got == before })
	proxy.Cut()
	clustertest.WaitFor(t, 30*time.Second, "the publisher to see the cut", func() bool { return pub.Stats().Wire.Peers == 0 })
	publishN(t, pub, "t", before+1, during, make([]byte, 100))
	clustertest.WaitFor(t, 30*time.Second, "the records to go out", func() bool { return pub.Stats().Published == before+during })
	proxy.Heal()
	rec.wait(t, ctx, "the subscriber")
	rec.check(t, "the subscriber", before+during)
	st := pub.Stats()
	if st.CatchUps == 0 || st.Recovery.Served != 0 {
		t.Errorf("catch-ups %d, recovery requests served %d: want what it missed on the data connection", st.CatchUps, st.Recovery.Served)
	}
	if _, replayed := rec.counts(); replayed != during {
		t.Errorf("replayed %d, want the %d published during the cut", replayed, during)
	}
}

// TestRepairWaitsWhileThePublisherIsUnreachable: a subscriber has asked
// for a gap when both its data connection and the recovery endpoint go
// away for longer than RepairTimeout (a relay dying, a network cut). The
// repair does not run out of time while nobody can answer it: once the
// publisher is back, the rejoin's feed brings the gap and nothing is
// lost. Before, the repair timed out in the outage and the gap was
// reported lost although the publisher held it.
func TestRepairWaitsWhileThePublisherIsUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("a 4 s outage")
	}
	const n = 300
	pub := testPublisher(t, func(cfg *PublisherConfig) { cfg.MaxBatchRecords = 1 })
	data, rec := clustertest.NewProxy(t, pub.Endpoint()), clustertest.NewProxy(t, pub.RecoveryEndpoint())
	data.SetDrop(func(frames [][]byte) bool { // records 101-200 go missing on the wire
		if len(frames) != 3 || len(frames[1]) != envelope.HeaderSize {
			return false
		}
		h, err := envelope.ParseHeader(frames[1])
		return err == nil && h.Kind == envelope.KindData && h.Seq > 100 && h.Seq <= 200
	})
	stream := recovery.DefaultStreamConfig()
	// Long enough that the cut below lands before the repair could time
	// out with the data connection still up, on a busy machine too.
	stream.RepairTimeout = 2 * time.Second
	r := newRecorder(n)
	sub := testSubscriber(t, SubscriberConfig{Connect: data.Endpoint(), Sync: pub.SyncEndpoint(), Recovery: rec.Endpoint(),
		ID: "cut", Stream: stream, PublisherTimeout: time.Minute}, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	rec.Cut()
	publishN(t, pub, "t", 1, n, make([]byte, 16))
	clustertest.WaitFor(t, 30*time.Second, "the gap to be asked for", func() bool { return sub.Stats().RepairRequests > 0 })
	data.Cut()
	data.SetDrop(nil)
	clustertest.WaitFor(t, 30*time.Second, "the cut to be seen", func() bool { return sub.Stats().Disconnects > 0 })
	<-time.After(2 * stream.RepairTimeout) // the outage being injected
	data.Heal()
	rec.Heal()
	r.wait(t, ctx, "the subscriber")
	r.check(t, "the subscriber", n)
	if st := sub.Stats(); st.RepairTimeouts != 0 {
		t.Errorf("%d repair timeouts while the publisher could not be asked", st.RepairTimeouts)
	}
}
