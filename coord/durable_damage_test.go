package coord

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/recovery"
)

// TestDurableDamageReportsLoss: an epoch of a publisher with a journal
// ends cleanly (END, the journal closed, its index snapshot written);
// then its segment is damaged on disk before the publisher restarts on
// the same directory: cut in the middle of a record near its end (the
// reported silent loss: truncate -s -5000), or a bit flipped in the
// middle, or both. A subscriber with a StateDir that had stopped early
// resumes the old epoch from the restarted publisher: every record is
// delivered in order or covered by exactly one EventLoss, and the losses
// cover exactly the damaged records (cause beyond-retention: the
// publisher no longer holds them), up to the epoch's recorded final
// sequence, not a torn-tail guess and never a false "complete".
func TestDurableDamageReportsLoss(t *testing.T) {
	const n, stopAt = 5000, 1000
	for _, tc := range []struct {
		name   string
		cut    int64  // bytes cut off the end of the segment
		flip   uint64 // the record whose payload gets a bit flipped
		short  uint64 // want ShortSegments
		damage uint64 // want Corrupt: the flipped batch, found by a replay; the end record the cut took
	}{
		{name: "tail cut", cut: 5000, short: 1, damage: 1},
		{name: "bit flip", flip: 2500, damage: 1},
		{name: "both", cut: 5000, flip: 2500, short: 1, damage: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir, stateDir := t.TempDir(), t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			old := testPublisher(t, func(c *PublisherConfig) {
				c.DataDir = dataDir
				c.Expect = 1
				c.MaxBatchRecords = 1 // many small batch records, so a cut spans several
				c.RepairWindow = 100 * time.Millisecond
			})
			id, oldEpoch := old.ID(), old.Epoch()
			stopEarly(t, ctx, old, stateDir, stopAt, n)

			// Damage the segment and work out which sequences that
			// destroyed, from the records on disk.
			seg := newestSegment(t, dataDir)
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(len(b)) - tc.cut
			var want [][2]uint64
			if tc.flip != 0 {
				off, end := recordOf(t, b, tc.flip)
				b[end-1] ^= 0x10 // the payload's last byte: the envelope's CRC-32C catches it
				if off < 0 || int64(end) > size {
					t.Fatalf("record %d at %d..%d, size %d", tc.flip, off, end, size)
				}
				want = append(want, [2]uint64{tc.flip, tc.flip})
			}
			if tc.cut > 0 {
				firstLost := firstCutSeq(t, b, size)
				if firstLost <= stopAt || firstLost <= tc.flip {
					t.Fatalf("the cut destroyed from seq %d; the test needs it above %d", firstLost, max(stopAt, tc.flip))
				}
				want = append(want, [2]uint64{firstLost, n})
			}
			if err := os.WriteFile(seg, b[:size], 0o640); err != nil {
				t.Fatal(err)
			}

			restarted := testPublisher(t, func(c *PublisherConfig) { c.DataDir = dataDir })
			if restarted.ID() != id || restarted.Epoch() <= oldEpoch {
				t.Fatalf("restart: id %v epoch %d", restarted.ID(), restarted.Epoch())
			}
			rec := newRecorder(0)
			sub := testSubscriber(t, SubscriberConfig{Connect: restarted.Endpoint(), Sync: restarted.SyncEndpoint(), ID: "s", StateDir: stateDir}, rec)
			key := streamKey(Event{Epoch: oldEpoch, Topic: "t"})
			deadline := time.Now().Add(30 * time.Second)
			for {
				rec.mu.Lock()
				next := rec.next[key]
				rec.mu.Unlock()
				if next == n+1 {
					break
				}
				if time.Now().After(deadline) {
					got, losses, errs, _ := rec.snapshot()
					t.Fatalf("epoch %d reached %d of %d: received %d, losses %v, errors %v; stats %+v; journal %+v",
						oldEpoch, next-1, n, got, losses, errs, sub.Stats(), restarted.Stats().Journal)
				}
				time.Sleep(10 * time.Millisecond)
			}
			got, losses, errs, _ := rec.snapshot()
			if len(errs) > 0 {
				t.Fatalf("order errors %v", errs) // a record or loss out of order, or twice
			}
			var lost [][2]uint64
			var lostN uint64
			for _, l := range losses {
				if l.Epoch != oldEpoch {
					continue
				}
				if l.Cause != recovery.CauseBeyondRetention.String() {
					t.Fatalf("loss %+v: cause %q, want %q", l, l.Cause, recovery.CauseBeyondRetention)
				}
				// Adjacent losses are one damaged range reported in parts.
				if k := len(lost); k > 0 && lost[k-1][1]+1 == l.From {
					lost[k-1][1] = l.To
				} else {
					lost = append(lost, [2]uint64{l.From, l.To})
				}
				lostN += l.To - l.From + 1
			}
			sort.Slice(want, func(i, j int) bool { return want[i][0] < want[j][0] })
			if len(lost) != len(want) {
				t.Fatalf("lost %v, want exactly %v", lost, want)
			}
			for i := range want {
				if lost[i] != want[i] {
					t.Fatalf("lost %v, want exactly %v", lost, want)
				}
			}
			// Delivered from the last record the first subscriber handed
			// over (at least once) up to the end, but for what was lost.
			if uint64(got) != n-stopAt+1-lostN {
				t.Fatalf("received %d, want %d", got, n-stopAt+1-lostN)
			}
			st := restarted.Stats().Journal
			if st.ShortSegments != tc.short || st.Corrupt != tc.damage || st.TornTails != 0 || st.HoleRecords != int64(lostN) {
				t.Fatalf("journal stats %+v", st)
			}
			t.Logf("lost %v of epoch %d, received %d", lost, oldEpoch, got)
		})
	}
}

// stopEarly runs a subscriber with StateDir that closes itself from its
// Handler at seq stopAt, while p publishes n records on topic "t", and
// closes p (END; its journal ends the epoch cleanly).
func stopEarly(t *testing.T, ctx context.Context, p *Publisher, stateDir string, stopAt, n int) {
	t.Helper()
	var first atomic.Pointer[Subscriber]
	stopped := make(chan struct{})
	sub, err := NewSubscriber(SubscriberConfig{Connect: p.Endpoint(), Sync: p.SyncEndpoint(), ID: "s", StateDir: stateDir,
		Handler: func(ev Event) {
			if ev.Type == EventMessage && ev.Seq == uint64(stopAt) {
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
			if _, err := p.Publish(ctx, "t", make([]byte, 16)); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	<-stopped
	sub.Close()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// Shutdown, not Close: every batch published reaches the journal and
	// END ends the epoch; the subscriber that stopped early is reported
	// unconfirmed, which is the point.
	var end *EndError
	if err := p.Shutdown(ctx); err != nil && !errors.As(err, &end) {
		t.Fatal(err)
	}
}

// newestSegment returns the path of the highest-numbered segment in dir.
func newestSegment(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(m) == 0 {
		t.Fatalf("segments %v: %v", m, err)
	}
	sort.Strings(m)
	return m[len(m)-1]
}

// segRecords walks the records of a segment (docs/durability.md, section
// 2) and calls fn with each batch record's bounds and first sequence.
func segRecords(t *testing.T, seg []byte, fn func(off, end int, seq uint64) bool) {
	t.Helper()
	const segHeader, recHead = 32, 16
	for off := segHeader; off+recHead <= len(seg); {
		body := int(binary.BigEndian.Uint32(seg[off+4:]))
		typ, topicLen := seg[off+8], int(seg[off+9])
		end := off + recHead + body
		if typ == 1 {
			h, err := envelope.ParseHeader(seg[off+recHead+topicLen : off+recHead+topicLen+envelope.HeaderSize])
			if err != nil {
				t.Fatal(err)
			}
			if !fn(off, end, h.Seq) {
				return
			}
		}
		off = end
	}
}

// firstCutSeq returns the first sequence of the first batch record that
// does not end within size bytes of the segment, or 0.
func firstCutSeq(t *testing.T, seg []byte, size int64) (seq uint64) {
	t.Helper()
	segRecords(t, seg, func(_, end int, s uint64) bool {
		if int64(end) > size {
			seq = s
			return false
		}
		return true
	})
	return seq
}

// recordOf returns the bounds of the batch record starting at seq.
func recordOf(t *testing.T, seg []byte, seq uint64) (off, end int) {
	t.Helper()
	off, end = -1, -1
	segRecords(t, seg, func(o, e int, s uint64) bool {
		if s == seq {
			off, end = o, e
			return false
		}
		return true
	})
	return off, end
}
