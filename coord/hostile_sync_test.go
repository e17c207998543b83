package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/zmtptest"
	"github.com/syncmq/syncmq/proto/handshake"
)

// Hostile peers on the sync endpoint: forged and flooded READYs.

// TestForgedReadiesAfterHangUp: a client takes one HELLO, hangs up its
// data connection, then sends 50 READYs under 50 invented ids quoting
// that nonce. The nonce died with its connection: every READY is refused
// (bad_nonce, counted), there is no quorum and nothing is published. A
// real subscriber then joins and receives everything from the first
// record. With the data connection kept open, the nonce proves exactly
// one id: the other 49 are refused.
func TestForgedReadiesAfterHangUp(t *testing.T) {
	const forged, n = 50, 2000
	for _, keepOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep-open=%v", keepOpen), func(t *testing.T) {
			expect := 1
			if keepOpen {
				expect = 2 // the one id the nonce proves counts; it must not be enough
			}
			lg, logs := observedLogger()
			pub := testPublisher(t, func(c *PublisherConfig) { c.Expect, c.Logger = expect, lg })
			data, nonce := rawHello(t, pub.Endpoint(), "")
			if !keepOpen {
				data.Close()
				waitFor(t, func() bool { return coreState(pub, func(c *pubCore) int { return len(c.conns) }) == 0 }, "the hang-up to reach the core")
			}
			c := zmtptest.MustDial(t, pub.SyncEndpoint(), "DEALER", "")
			reqs := make([][]byte, forged)
			for i := range reqs {
				reqs[i] = readyFor(pub, fmt.Sprintf("forged-%d", i), nonce)
			}
			codes := map[string]int{}
			askAll(t, c, reqs, codes)
			st := pub.Stats()
			wantRefused, wantAcked := forged, 0
			if keepOpen {
				wantRefused, wantAcked = forged-1, 1
			}
			if codes[handshake.CodeBadNonce] != wantRefused || codes[""] != wantAcked || st.Refused[handshake.CodeBadNonce] != uint64(wantRefused) {
				t.Fatalf("replies %v, refused %v: want %d bad_nonce and %d ACK", codes, st.Refused, wantRefused, wantAcked)
			}
			if st.Quorum || st.Published != 0 || st.Joined != wantAcked {
				t.Fatalf("stats %+v: want no quorum, nothing published, %d joined", st, wantAcked)
			}
			if got := countLines(logs, "sync request refused"); got != 1 {
				t.Errorf("%d refusal lines for %d refusals, want 1 (rate-limited): %s", got, wantRefused, lineMessages(logs))
			}

			rec := newRecorder(n)
			sub := testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "real"}, rec)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := sub.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			if err := pub.WaitQuorum(ctx); err != nil {
				t.Fatal(err)
			}
			publishN(t, pub, "t", 0, n, make([]byte, 16))
			waitDone(t, rec, time.Minute)
			rec.check(t, "real subscriber", n)
			if st := pub.Stats(); st.Joined != wantAcked+1 {
				t.Errorf("joined %d, want %d", st.Joined, wantAcked+1)
			}
		})
	}
}

// TestReadyFlood: 100,000 READYs under distinct ids quoting invented
// nonces, pipelined on 8 connections. Every one is refused (bad_nonce,
// counted); the publisher remembers none of the ids, its heap does not
// grow with them, and it writes one warn line per 10 s, not one per
// refusal. Then, where the ids are real (each quoting the nonce of its
// own data connection), the publisher accepts MaxSubscribers of them and
// refuses the rest with "full".
func TestReadyFlood(t *testing.T) {
	const (
		readies  = 100_000
		conns    = 8
		maxSubs  = 16
		overfull = 4
	)
	lg, logs := observedLogger()
	pub := testPublisher(t, func(c *PublisherConfig) { c.Expect, c.MaxSubscribers, c.Logger = maxSubs+1, maxSubs, lg })
	before := heapInUse()
	start := time.Now()
	done := make(chan map[string]int, conns)
	for i := 0; i < conns; i++ {
		c := zmtptest.MustDial(t, pub.SyncEndpoint(), "DEALER", "")
		reqs := make([][]byte, readies/conns)
		for j := range reqs {
			var nonce [16]byte
			rand.Read(nonce[:])
			reqs[j] = readyFor(pub, fmt.Sprintf("flood-%d-%d", i, j), hex.EncodeToString(nonce[:]))
		}
		go func() {
			codes := map[string]int{}
			askAll(t, c, reqs, codes)
			done <- codes
		}()
	}
	total := map[string]int{}
	for range conns {
		for code, n := range <-done {
			total[code] += n
		}
	}
	elapsed := time.Since(start)
	grew := int64(heapInUse()) - int64(before)
	st := pub.Stats()
	t.Logf("%d READYs refused in %v (%.0f/s); heap grew %d KiB; %d warn lines", readies, elapsed.Round(time.Millisecond),
		readies/elapsed.Seconds(), grew>>10, logs.Len())
	if total[handshake.CodeBadNonce] != readies || st.Refused[handshake.CodeBadNonce] != readies {
		t.Fatalf("replies %v, refused %v: want %d bad_nonce", total, st.Refused, readies)
	}
	if ids := coreState(pub, func(c *pubCore) int { return len(c.subs) }); ids != 0 || st.Joined != 0 {
		t.Fatalf("the publisher remembers %d ids, %d joined", ids, st.Joined)
	}
	// The requests themselves (about 15 MiB of them) are the test's.
	if grew > 4<<20 {
		t.Errorf("heap grew %d KiB over %d refused READYs", grew>>10, readies)
	}
	if lines, bound := countLines(logs, "sync request refused"), 1+int(elapsed/(10*time.Second)); lines > bound {
		t.Errorf("%d refusal lines in %v, want at most %d (one per 10 s)", lines, elapsed, bound)
	}

	// Real ids: each quotes the nonce of its own live data connection.
	c := zmtptest.MustDial(t, pub.SyncEndpoint(), "DEALER", "")
	codes := map[string]int{}
	for i := 0; i < maxSubs+overfull; i++ {
		_, nonce := rawHello(t, pub.Endpoint(), "")
		askAll(t, c, [][]byte{readyFor(pub, fmt.Sprintf("real-%d", i), nonce)}, codes)
	}
	st = pub.Stats()
	if codes[""] != maxSubs || codes[handshake.CodeFull] != overfull || st.Refused[handshake.CodeFull] != overfull || st.Joined != maxSubs {
		t.Fatalf("replies %v, stats %+v: want %d ACKs, then %d full", codes, st, maxSubs, overfull)
	}
	if st.Quorum {
		t.Fatal("quorum reached with ids refused as full")
	}
}
