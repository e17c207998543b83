package coord

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/testpki"
	"github.com/syncmq/syncmq/recovery"
)

// localEndpoints returns a publisher's three endpoints on transport
// (ipc, inproc or tcp); names are unique per test.
func localEndpoints(t testing.TB, transport string) (bind, syncBind, recoveryBind string) {
	switch transport {
	case "ipc":
		dir := t.TempDir()
		return "ipc://" + filepath.Join(dir, "d.sock"), "ipc://" + filepath.Join(dir, "s.sock"), "ipc://" + filepath.Join(dir, "r.sock")
	case "inproc":
		name := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
		return "inproc://" + name + "/data", "inproc://" + name + "/sync", "inproc://" + name + "/recovery"
	}
	return "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
}

// TestLocalTransports: over ipc:// and inproc:// the publisher gives what
// it gives over tcp://: the quorum handshake (a READY quoting the
// HELLO's nonce), ordered envelopes, a subscriber that stops reading cut
// as a slow consumer without holding the healthy one back, its gap
// repaired from retention over the recovery endpoint the ACK names, and
// what retention no longer holds reported as an exact loss.
func TestLocalTransports(t *testing.T) {
	for _, transport := range []string{"ipc", "inproc"} {
		for _, tc := range []struct {
			name      string
			retention int
		}{{"within-retention", 100_000}, {"beyond-retention", 10_000}} {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				const n, size = 40_000, 512
				p := testPublisher(t, func(c *PublisherConfig) {
					c.Bind, c.SyncBind, c.RecoveryBind = localEndpoints(t, transport)
					c.Expect = 2
					c.History = recovery.HistoryConfig{MaxMessages: tc.retention, MaxBytes: 256 << 20, MaxTopics: 4}
					c.Wire.SlowTimeout = 200 * time.Millisecond
					c.Wire.QueueBytes, c.Wire.MaxQueueBytes = 256<<10, 4<<20
					// The cut sends the stalled subscriber to the recovery
					// endpoint, which is what this test runs over the local
					// transports; under catch-up it would be fed on its data
					// connection instead (TestSlowSubscriberCatchesUp).
					c.SlowPolicy = SlowCut
				})
				healthy, stalled := newRecorder(n), newRecorder(0)
				// No Recovery endpoint: the subscribers take the ACK's.
				testSubscriber(t, SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "healthy"}, healthy)
				cut := func() bool { return p.Stats().Wire.SlowConsumers > 0 }
				sub, err := NewSubscriber(SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "stalled",
					Handler: stallUntil(stalled, 5_000, cut)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sub.Close() })
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if err := p.WaitQuorum(ctx); err != nil {
					t.Fatal(err)
				}
				payload := make([]byte, size)
				for i := 1; i <= n; i++ {
					binary.BigEndian.PutUint64(payload, uint64(i))
					if _, err := p.Publish(ctx, "burst", payload); err != nil {
						t.Fatal(err)
					}
				}
				waitDone(t, healthy, time.Minute)
				healthy.check(t, "healthy subscriber", n)
				clustertest.WaitFor(t, time.Minute, "the stalled subscriber to account for every message", func() bool {
					got, _ := stalled.counts()
					return uint64(got)+stalled.lostCount() >= n
				})
				received, replayed := stalled.counts()
				_, losses, errs, _ := stalled.snapshot()
				if len(errs) > 0 {
					t.Fatalf("order errors: %v", errs)
				}
				if p.Stats().Wire.SlowConsumers == 0 {
					t.Fatal("the stalled subscriber was never cut")
				}
				if uint64(received)+stalled.lostCount() != n {
					t.Fatalf("received %d + lost %d != %d: something vanished silently", received, stalled.lostCount(), n)
				}
				t.Logf("%s: stalled subscriber received %d (replayed %d), lost %d in %d gaps", transport, received, replayed, stalled.lostCount(), len(losses))
				if tc.retention >= n {
					if len(losses) != 0 || replayed == 0 {
						t.Fatalf("losses %v, replayed %d; want the gap repaired", losses, replayed)
					}
					return
				}
				if len(losses) == 0 {
					t.Fatal("no loss reported beyond retention")
				}
				for _, l := range losses {
					if l.Cause != "slow-consumer" {
						t.Errorf("loss %d..%d has cause %s, want slow-consumer", l.From, l.To, l.Cause)
					}
				}
			})
		}
	}
}

// TestLocalTransportsRefuseTLS: ipc:// and inproc:// carry no TLS, so a
// publisher or subscriber configured with TLS refuses them in Validate.
func TestLocalTransportsRefuseTLS(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	cfg := loopbackConfig()
	cfg.TLS = testTLS(t, ca.Server(t, "publisher"), ca)
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "ipc:///tmp/x.sock", "inproc://sync", "tls://127.0.0.1:0"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `bind: "ipc:///tmp/x.sock": ipc:// and inproc:// carry no TLS`) || !strings.Contains(err.Error(), `sync-bind: "inproc://sync"`) {
		t.Errorf("publisher: %v", err)
	}
	sc := SubscriberConfig{Connect: "ipc:///tmp/x.sock", Sync: "inproc://sync", TLS: testTLS(t, ca.Client(t, "sub"), ca)}
	if err := sc.Validate(); err == nil || strings.Count(err.Error(), "carry no TLS") != 2 {
		t.Errorf("subscriber: %v", err)
	}
}
