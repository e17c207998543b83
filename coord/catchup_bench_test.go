package coord

import (
	"context"
	"testing"
	"time"

	"github.com/syncmq/syncmq/recovery"
)

// BenchmarkLateJoinerCatchUp: records of 1 KiB published, then one
// subscriber joins at the earliest record and takes them all from the
// history on its data connection (catch-up), from memory and from the
// journal. Each op is one whole catch-up; records/s is the rate.
func BenchmarkLateJoinerCatchUp(b *testing.B) {
	const records, size = 200_000, 1024
	for _, disk := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "journal"}[disk], func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(records * size)
			var took time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cfg := loopbackConfig()
				cfg.History = recovery.HistoryConfig{MaxMessages: records, MaxBytes: 1 << 30, MaxTopics: 4}
				if disk {
					cfg.DataDir = b.TempDir()
					cfg.Journal.Retention.MaxMessages = records
				}
				pub, err := NewPublisher(cfg)
				if err != nil {
					b.Fatal(err)
				}
				publishN(b, pub, "t", 1, records, make([]byte, size))
				late := newRecorder(records)
				b.StartTimer()
				start := time.Now()
				sub := testSubscriber(b, SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "late", StartAt: StartAtEarliest}, late)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				late.wait(b, ctx, "late joiner")
				took += time.Since(start)
				cancel()
				b.StopTimer()
				late.check(b, "late joiner", records)
				if st := pub.Stats(); st.Recovery.Served != 0 {
					b.Fatalf("%d recovery requests: the catch-up went over FETCH", st.Recovery.Served)
				}
				sub.Close()
				pub.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(records*b.N)/took.Seconds(), "records/s")
		})
	}
}
