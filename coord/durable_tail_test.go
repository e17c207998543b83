package coord

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/zmtptest"
	"github.com/syncmq/syncmq/proto/fetch"
)

// TestEndedEpochAboveItsFinal: a journal that lost its unsynced tail in
// a power loss ends an epoch below records its subscribers saw, and
// those subscribers ask for them after the restart. The recovery server
// must not call that range complete (a FETCH's old meaning of "beyond
// end") or beyond end (FETCH_MANY): both deny what was published, and a
// subscriber reports the range lost of unknown cause. It answers
// partial with first held 0, and the subscriber reports what it lacks
// as beyond-retention. Found by the simulator (seeds 776480 and 838940).
// The current epoch keeps "beyond end": its records may still come.
func TestEndedEpochAboveItsFinal(t *testing.T) {
	const n = 50
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := testPublisher(t, func(c *PublisherConfig) {
		c.DataDir = dataDir
		c.MaxBatchRecords = 1
		c.RepairWindow = 100 * time.Millisecond
	})
	coldHistory(t, old, n, 16)
	oldEpoch := old.Epoch()
	var end *EndError
	if err := old.Shutdown(ctx); err != nil && !errors.As(err, &end) {
		t.Fatal(err)
	}
	p := testPublisher(t, func(c *PublisherConfig) { c.DataDir = dataDir })
	if _, err := p.Publish(ctx, "cold", []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Stats().Published == 1 }, "the record to be sent")

	c := zmtptest.MustDial(t, p.RecoveryEndpoint(), "DEALER", "127.0.0.1")
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() }) // a server that never answers ends the wait
	defer stop()
	id := uint32(0)
	ask := func(req []byte) (replayed int, done fetch.Response) {
		t.Helper()
		if err := c.Send(req); err != nil {
			t.Fatal(err)
		}
		for {
			frames, err := c.RecvReuse()
			if err != nil {
				t.Fatal(err)
			}
			r, err := fetch.DecodeResponse(frames)
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != id {
				continue
			}
			if r.Type == fetch.TypeReplay {
				replayed += int(binary.BigEndian.Uint16(frames[2][6:8]))
				continue
			}
			return replayed, r
		}
	}
	one := func(epoch, from, to uint64) []byte {
		id++
		return fetch.EncodeRequest(nil, fetch.Request{ID: id, Publisher: p.ID(), Epoch: epoch, Topic: "cold", From: from, To: to})
	}
	many := func(epoch, from, to uint64) []byte {
		id++
		return fetch.EncodeManyRequest(nil, fetch.ManyRequest{ID: id, Publisher: p.ID(), Epoch: epoch,
			Ranges: []fetch.Range{{Topic: "cold", From: from, To: to}}})
	}
	for _, tc := range []struct {
		name     string
		req      func(epoch, from, to uint64) []byte
		epoch    uint64
		from, to uint64
		replayed int
		status   fetch.Status
		first    uint64
		last     uint64
	}{
		{"held", one, oldEpoch, 41, n, n - 40, fetch.StatusComplete, 1, n},
		{"across the final", one, oldEpoch, 41, n + 20, n - 40, fetch.StatusPartial, 0, n},
		{"above the final", one, oldEpoch, n + 10, n + 20, 0, fetch.StatusPartial, 0, n},
		{"above the final, many", many, oldEpoch, n + 10, n + 20, 0, fetch.StatusPartial, 0, n},
		{"current epoch, many", many, 0, 5, 9, 0, fetch.StatusBeyondEnd, 1, 1},
	} {
		epoch := tc.epoch
		if epoch == 0 {
			epoch = p.Epoch()
		}
		replayed, r := ask(tc.req(epoch, tc.from, tc.to))
		d := r.Done
		if r.Type == fetch.TypeDoneMany {
			d = fetch.Done{Status: r.Many.Ranges[0].Status, FirstHeld: r.Many.Ranges[0].FirstHeld, LastSeq: r.Many.Ranges[0].LastSeq}
		}
		if replayed != tc.replayed || d.Status != tc.status || d.FirstHeld != tc.first || d.LastSeq != tc.last {
			t.Errorf("%s: %d-%d replayed %d, %+v; want %d replayed, status %v, first held %d, last %d",
				tc.name, tc.from, tc.to, replayed, d, tc.replayed, tc.status, tc.first, tc.last)
		}
	}
}
