package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/syncmq/syncmq/relay"
)

// RelaySource is what a RelayCollector reads; *relay.Relay is one.
type RelaySource interface {
	Stats() relay.Stats
}

// RelayCollector is a prometheus.Collector of what a relay did between
// its two sides (syncmq_relay_*). The downstream publisher's and the
// upstream subscriber's own metrics come from their collectors.
type RelayCollector struct {
	src     RelaySource
	scalars []scalar[relay.Stats]
}

// NewRelayCollector returns a collector reading src.Stats() at every
// scrape.
func NewRelayCollector(src RelaySource) *RelayCollector {
	const sub = "relay"
	type st = relay.Stats
	return &RelayCollector{
		src: src,
		scalars: []scalar[st]{
			counter(sub, "forwarded_messages_total", "Records forwarded downstream, whole or re-batched.", func(s *st) float64 { return float64(s.Forwarded) }),
			counter(sub, "whole_batches_total", "Upstream batches forwarded downstream as they arrived, without re-encoding.", func(s *st) float64 { return float64(s.Whole) }),
			counter(sub, "upstream_loss_events_total", "Ranges reported lost upstream, forwarded downstream with their cause.", func(s *st) float64 { return float64(s.LossRanges) }),
			counter(sub, "upstream_lost_messages_total", "Records in the ranges reported lost upstream.", func(s *st) float64 { return float64(s.Lost) }),
			counter(sub, "upstream_restarts_total", "Upstream publisher restarts (new epochs) the relay followed.", func(s *st) float64 { return float64(s.Restarts) }),
		},
	}
}

// Describe implements prometheus.Collector.
func (c *RelayCollector) Describe(ch chan<- *prometheus.Desc) { describeScalars(ch, c.scalars) }

// Collect implements prometheus.Collector: one Stats snapshot per call.
func (c *RelayCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	collectScalars(ch, &st, c.scalars)
}
