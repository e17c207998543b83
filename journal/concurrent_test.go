package journal_test

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncmq/syncmq/journal"
)

// TestReadWhileAppending runs readers against a writer that rolls
// segments, evicts, and is synced every millisecond: every batch a reader
// sees is intact and in order.
func TestReadWhileAppending(t *testing.T) {
	cfg := testConfig()
	cfg.SyncInterval = time.Millisecond
	cfg.SegmentBytes = journal.MinSegmentBytes
	cfg.Retention.MaxMessages = 300
	j := open(t, t.TempDir(), cfg)
	const total = 3000
	var done atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := []string{"a", "b"}[r%2]
			for i := 0; !done.Load() || i < 3; i++ {
				var prev uint64
				_, err := j.Read(1, topic, uint64(i%total)+1, total, func(b journal.Batch) bool {
					m := b.Message()
					for seq, p := range m.Records() {
						if seq <= prev {
							t.Errorf("%s: seq %d after %d", topic, seq, prev)
						}
						prev = seq
						if !bytes.Equal(p, payloadOf(topic, seq, 64)) {
							t.Errorf("%s seq %d: wrong payload", topic, seq)
						}
					}
					return true
				})
				if err != nil {
					t.Error(err)
					return
				}
				reads.Add(1)
				_ = j.Stats()
				_ = j.Epochs()
			}
		}()
	}
	for seq := uint64(1); seq <= total; seq++ {
		mustAppend(t, j, frames(1, "a", seq, 1, 64))
		if seq%2 == 0 {
			mustAppend(t, j, frames(1, "b", seq/2, 1, 64))
		}
	}
	done.Store(true)
	wg.Wait()
	if st := j.Stats(); st.SegmentsDeleted == 0 || reads.Load() == 0 {
		t.Fatalf("no segment deleted or no read: %+v, %d reads", st, reads.Load())
	}
}
