package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/recovery"
)

// SubscriberSource is what a SubscriberCollector reads; *coord.Subscriber
// is one.
type SubscriberSource interface {
	Stats() coord.SubscriberStats
}

// SubscriberCollector is a prometheus.Collector of one subscriber's
// metrics (syncmq_subscriber_*). Each scrape takes one Stats snapshot.
type SubscriberCollector struct {
	src     SubscriberSource
	scalars []scalar[coord.SubscriberStats]

	lost, latency *prometheus.Desc
	causes        []recovery.Cause
	bounds        []float64 // the latency buckets' upper bounds in seconds
}

// NewSubscriberCollector returns a collector reading src.Stats() at every
// scrape.
func NewSubscriberCollector(src SubscriberSource) *SubscriberCollector {
	const sub = "subscriber"
	type st = coord.SubscriberStats
	c := &SubscriberCollector{
		src: src,
		scalars: []scalar[st]{
			counter(sub, "messages_total", "Messages delivered to the application, live or repaired.", func(s *st) float64 { return float64(s.Received) }),
			counter(sub, "bytes_total", "Payload bytes of the messages delivered.", func(s *st) float64 { return float64(s.ReceivedBytes) }),
			counter(sub, "repaired_messages_total", "Messages delivered from a replay over the recovery channel.", func(s *st) float64 { return float64(s.Recovered) }),
			counter(sub, "gaps_total", "Gaps detected in the streams, whether repaired or lost.", func(s *st) float64 { return float64(s.Gaps) }),
			counter(sub, "loss_events_total", "Loss events reported: ranges that will never be delivered, and open-ended ones after a publisher vanished.", func(s *st) float64 { return float64(s.LossEvents + s.UnknownTails) }),
			counter(sub, "duplicate_messages_total", "Messages received again, or from before the join, and dropped.", func(s *st) float64 { return float64(s.Duplicates) }),
			counter(sub, "malformed_messages_total", "Envelopes that failed to decode.", func(s *st) float64 { return float64(s.Malformed) }),
			counter(sub, "stale_messages_total", "Messages of a publisher's older epoch, dropped after its restart.", func(s *st) float64 { return float64(s.Stale) }),
			counter(sub, "repair_requests_total", "Ranges asked for over the recovery channel.", func(s *st) float64 { return float64(s.RepairRequests) }),
			counter(sub, "repair_timeouts_total", "Repairs given up after the repair timeout without progress.", func(s *st) float64 { return float64(s.RepairTimeouts) }),
			counter(sub, "held_overflows_total", "Gaps given up because the messages held behind them reached the held-bytes bound.", func(s *st) float64 { return float64(s.Overflows) }),
			counter(sub, "held_shed_total", "Held messages let go at the held-bytes bound, to be repaired again.", func(s *st) float64 { return float64(s.HeldShed) }),
			counter(sub, "handshakes_total", "Sync handshakes completed (ACKs received).", func(s *st) float64 { return float64(s.Handshakes) }),
			counter(sub, "handshake_failures_total", "Sync handshake attempts refused or failed.", func(s *st) float64 { return float64(s.HandshakeErrors) }),
			counter(sub, "disconnects_total", "Data connections to a publisher lost.", func(s *st) float64 { return float64(s.Disconnects) }),
			counter(sub, "reconnects_total", "Data connections to a publisher established again after one was lost.", func(s *st) float64 { return float64(s.Reconnects) }),
			counter(sub, "publisher_restarts_total", "New publisher epochs seen.", func(s *st) float64 { return float64(s.Restarts) }),
			gauge(sub, "lag_messages", "Messages the latest heartbeats said were published that are not yet delivered or reported lost.", func(s *st) float64 { return float64(s.Lag) }),
			gauge(sub, "held_messages", "Messages held behind gaps being repaired.", func(s *st) float64 { return float64(s.Held) }),
			gauge(sub, "held_bytes", "Memory of the messages held behind gaps, in bytes.", func(s *st) float64 { return float64(s.HeldBytes) }),
			gauge(sub, "repairing_streams", "Streams (publisher and topic) with a gap being repaired.", func(s *st) float64 { return float64(s.Repairing) }),
			gauge(sub, "publishers_connected", "Publishers whose data connection is up.", func(s *st) float64 { return float64(s.Connected) }),
			gauge(sub, "publishers_joined", "Publisher incarnations joined through the sync handshake and not ended.", func(s *st) float64 { return float64(s.Joined) }),
		},
		lost: prometheus.NewDesc(prometheus.BuildFQName(namespace, sub, "lost_messages_total"),
			"Messages reported lost, by cause (see docs/runbook.md).", []string{"cause"}, nil),
		latency: prometheus.NewDesc(prometheus.BuildFQName(namespace, sub, "delivery_latency_seconds"),
			"Time from the publisher handing a message's batch to its socket to its live delivery (repaired messages are not counted).", nil, nil),
		causes: recovery.Causes(),
	}
	for _, b := range coord.LatencyBounds() {
		c.bounds = append(c.bounds, b.Seconds())
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *SubscriberCollector) Describe(ch chan<- *prometheus.Desc) {
	describeScalars(ch, c.scalars)
	ch <- c.lost
	ch <- c.latency
}

// Collect implements prometheus.Collector: one Stats snapshot per call.
func (c *SubscriberCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	collectScalars(ch, &st, c.scalars)
	for _, cause := range c.causes {
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(st.LostByCause[cause]), cause.String())
	}
	h := st.Latency
	buckets := make(map[float64]uint64, len(c.bounds))
	var cum uint64
	for i, le := range c.bounds {
		cum += h.Counts[i]
		buckets[le] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.latency, h.Count, h.Sum.Seconds(), buckets)
}
