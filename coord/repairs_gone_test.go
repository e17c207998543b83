package coord

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/recovery"
)

// TestRepairsGoneAfterEnd: after END a subscriber owes its application
// only the repair of its gaps. When the recovery endpoint answers none of
// them (here it is gone), the gaps are given up together once nothing
// was heard from the publisher for PublisherTimeout (cause timeout), and
// the job ends with the plain END and the outcome lost. Before, each gap
// was given up on its own after RepairTimeout: 500 gaps took 500
// timeouts. RepairTimeout is longer than the test here, so no gap can end
// on its own: they all end together, or the test fails at its deadline.
func TestRepairsGoneAfterEnd(t *testing.T) {
	const n, gaps = 2000, 500
	p := testPublisher(t, func(c *PublisherConfig) { c.MaxBatchRecords = 1 })
	proxy := clustertest.NewProxy(t, p.Endpoint())
	proxy.SetDrop(func(frames [][]byte) bool { // every other record of 2..1000: 500 gaps of one
		if len(frames) != 3 || len(frames[1]) != envelope.HeaderSize {
			return false
		}
		h, err := envelope.ParseHeader(frames[1])
		return err == nil && h.Kind == envelope.KindData && h.Seq <= 2*gaps && h.Seq%2 == 0
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + l.Addr().String()
	l.Close()
	rec := newRecorder(0)
	stream := recovery.DefaultStreamConfig()
	stream.RepairTimeout = 10 * time.Minute
	sub := testSubscriber(t, SubscriberConfig{Connect: proxy.Endpoint(), Sync: p.SyncEndpoint(), Recovery: dead,
		Stream: stream, PublisherTimeout: time.Second}, rec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sub.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	publishN(t, p, "t", 1, n, make([]byte, 16))
	go func() { _ = p.Shutdown(ctx) }() // END; it waits for the subscriber's BYE
	rec.wait(t, ctx, "subscriber")
	got, losses, errs, _ := rec.snapshot()
	if got+int(rec.lostCount()) != n || len(errs) != 0 {
		t.Fatalf("received %d, lost %d of %d; order errors %v", got, rec.lostCount(), n, errs)
	}
	for _, l := range losses {
		if l.Cause != recovery.CauseTimeout.String() || l.To != l.From || l.From%2 != 0 {
			t.Errorf("loss %d-%d (%s): want each dropped record on its own, cause timeout", l.From, l.To, l.Cause)
		}
	}
	if len(losses) != gaps {
		t.Errorf("%d losses, want %d", len(losses), gaps)
	}
	if st := sub.Stats(); st.RepairTimeouts != 0 {
		t.Errorf("%d gaps timed out on their own; want all given up together", st.RepairTimeouts)
	}
	var je *JobError
	if err := sub.Err(); !errors.As(err, &je) || je.Outcome != OutcomeLost {
		t.Errorf("outcome %v, want lost", err)
	}
	t.Logf("%d received, %d lost in %d losses", got, rec.lostCount(), len(losses))
}
