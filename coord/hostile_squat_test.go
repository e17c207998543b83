package coord

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/zmtptest"
	"github.com/syncmq/syncmq/proto/handshake"
)

// Squatters on tcp://: peers that take subscriber ids to fill
// MaxSubscribers, so that a real subscriber is refused "full".

// TestSquattersCannotKeepSubscriberOut: with MaxSubscribers 20 and a
// quorum of 21 (so the epoch never starts), 20 ids join through raw
// connections and hang up: each is forgotten when its data connection
// goes, and a real subscriber then joins. 20 ids from one address that
// stay connected get MaxSubscribersPerIP (5) places, the other 15 are
// refused "full" and counted, and the real subscriber from another
// address joins too.
func TestSquattersCannotKeepSubscriberOut(t *testing.T) {
	const max, perIP = 20, 5
	for _, stay := range []bool{false, true} {
		t.Run(fmt.Sprintf("stay=%v", stay), func(t *testing.T) {
			lg, logs := observedLogger()
			pub := testPublisher(t, func(c *PublisherConfig) {
				c.Expect, c.MaxSubscribers, c.MaxSubscribersPerIP, c.Logger = max+1, max, perIP, lg
			})
			sync := zmtptest.MustDial(t, pub.SyncEndpoint(), "DEALER", "127.0.0.2")
			codes := map[string]int{}
			for i := 0; i < max; i++ {
				src := srcAddr(i + 1)
				if stay {
					src = "127.0.0.2"
				}
				data, nonce := rawHello(t, pub.Endpoint(), src)
				askAll(t, sync, [][]byte{readyFor(pub, fmt.Sprintf("squatter-%d", i), nonce)}, codes)
				if !stay {
					data.Close()
				}
			}
			if stay {
				if codes[""] != perIP || codes[handshake.CodeFull] != max-perIP {
					t.Fatalf("replies %v: want %d ACKs and %d full", codes, perIP, max-perIP)
				}
			} else {
				if codes[""] != max {
					t.Fatalf("replies %v: want %d ACKs", codes, max)
				}
				waitFor(t, func() bool { return pub.Stats().Forgotten == max }, "every squatter forgotten")
			}
			rec := newRecorder(0)
			sub := testSubscriber(t, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "real"}, rec)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := sub.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			st := pub.Stats()
			t.Logf("squatters staying=%v: joined %d, forgotten %d, refused %v (per address %d)", stay, st.Joined, st.Forgotten, st.Refused, st.FullPerIP)
			wantFull := 0
			if stay {
				wantFull = max - perIP
			}
			if st.Refused[handshake.CodeFull] != uint64(wantFull) || st.FullPerIP != uint64(wantFull) {
				t.Errorf("refused %v, %d per address: want %d full, all for the address", st.Refused, st.FullPerIP, wantFull)
			}
			if n := countLines(logs, "left before the start"); n > 1 {
				t.Errorf("%d lines for squatters leaving, want at most 1 (rate-limited)", n)
			}
		})
	}
}
