package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/proto/handshake"
)

// PublisherSource is what a PublisherCollector reads; *coord.Publisher
// is one.
type PublisherSource interface {
	Stats() coord.PublisherStats
}

// handshakeCodes are the refusal codes a publisher answers a READY or
// BYE with; any other code a future version adds is reported as "other".
var handshakeCodes = []string{
	handshake.CodeMalformed, handshake.CodeVersion, handshake.CodeBadNonce, handshake.CodeWrongPublisher, handshake.CodeFull,
	handshake.CodeForbidden,
}

// labelValue writes a wire code as a label value: label values are
// lower case with hyphens, as loss causes and connection reasons are
// (bad_nonce is exported as bad-nonce).
func labelValue(code string) string { return strings.ReplaceAll(code, "_", "-") }

// Endpoint kinds of the connection metrics' "endpoint" label.
const (
	endpointData     = "data"
	endpointSync     = "sync"
	endpointRecovery = "recovery"
)

// PublisherCollector is a prometheus.Collector of one publisher's
// metrics (syncmq_publisher_*). Each scrape takes one Stats snapshot.
type PublisherCollector struct {
	src     PublisherSource
	scalars []scalar[coord.PublisherStats]

	refusals, connRefused, connClosed, connEvicted, conns, recovery *prometheus.Desc
}

// NewPublisherCollector returns a collector reading src.Stats() at every
// scrape.
func NewPublisherCollector(src PublisherSource) *PublisherCollector {
	const sub = "publisher"
	type st = coord.PublisherStats
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, sub, name), help, labels, nil)
	}
	return &PublisherCollector{
		src: src,
		scalars: []scalar[st]{
			counter(sub, "messages_total", "Messages (records) handed to the PUB socket.", func(s *st) float64 { return float64(s.Published) }),
			counter(sub, "bytes_total", "Payload bytes of the messages handed to the PUB socket.", func(s *st) float64 { return float64(s.PublishedBytes) }),
			counter(sub, "batches_total", "DATA envelopes the messages travelled in.", func(s *st) float64 { return float64(s.Batches) }),
			counter(sub, "control_messages_total", "HELLO, HEARTBEAT, ABORT and END envelopes sent.", func(s *st) float64 { return float64(s.Control) }),
			counter(sub, "handshakes_total", "READY requests answered with an ACK.", func(s *st) float64 { return float64(s.Handshakes) }),
			counter(sub, "kicked_connections_total", "Data connections closed for not completing the sync handshake within the join timeout.", func(s *st) float64 { return float64(s.Kicked) }),
			counter(sub, "slow_consumer_disconnects_total", "Subscribers disconnected as slow consumers.", func(s *st) float64 { return float64(s.Wire.SlowConsumers) }),
			counter(sub, "slow_consumer_dropped_envelopes_total", "Envelopes addressed to slow consumers that never reached them.", func(s *st) float64 { return float64(s.Wire.Dropped) }),
			counter(sub, "send_waits_total", "Sends that waited because every subscriber's queue was above the queue bound.", func(s *st) float64 { return float64(s.Wire.Waits) }),
			counter(sub, "catch_ups_total", "Data connections taken off the live stream and fed from the history at their own pace (slow policy catch-up, and late joiners).", func(s *st) float64 { return float64(s.CatchUps) }),
			counter(sub, "catch_up_merges_total", "Of the catch-ups, those that caught up and went back on the live stream.", func(s *st) float64 { return float64(s.CatchUpsMerged) }),
			counter(sub, "catch_up_bytes_total", "Bytes fed from the history to data connections catching up.", func(s *st) float64 { return float64(s.CatchUpBytes) }),
			counter(sub, "catch_up_holds_total", "Times publishing held new batches back because every joined subscriber was catching up: the publisher went at the pace of the fastest of them.", func(s *st) float64 { return float64(s.CatchUpHolds) }),
			gauge(sub, "catching_up_connections", "Data connections being fed from the history now.", func(s *st) float64 { return float64(s.CatchingUp) }),
			counter(sub, "recovery_replayed_messages_total", "Messages replayed over the recovery channel.", func(s *st) float64 { return float64(s.Recovery.Replayed) }),
			counter(sub, "history_evicted_messages_total", "Messages dropped from the recovery history to stay within its limits.", func(s *st) float64 { return float64(s.Retained.Evicted) }),
			counter(sub, "connection_events_coalesced_total", "Data connection events dropped before the core because they told it nothing new (subscription churn, connections gone before it saw them).", func(s *st) float64 { return float64(s.CoalescedEvents) }),
			counter(sub, "forgotten_subscribers_total", "Subscriber ids forgotten because their data connection went away before publishing started; each gave its place up.", func(s *st) float64 { return float64(s.Forgotten) }),
			counter(sub, "handshake_refusals_per_ip_total", "READY requests refused full because their source address had the most subscriber ids allowed (tcp:// only).", func(s *st) float64 { return float64(s.FullPerIP) }),
			counter(sub, "recovery_turn_waits_total", "Replayed batches that waited for their turn at the replay budget behind other connections.", func(s *st) float64 { return float64(s.Recovery.TurnWaits) }),
			gauge(sub, "subscription_bytes", "Memory the subscriptions of all data connections take, as the subscription budget counts it.", func(s *st) float64 { return float64(s.Wire.SubscriptionBytes) }),
			gauge(sub, "handshakes_in_progress", "Data connections in their TLS or ZMTP handshake.", func(s *st) float64 { return float64(s.Wire.Pending) }),
			gauge(sub, "topics", "Topics published on.", func(s *st) float64 { return float64(s.Topics) }),
			gauge(sub, "subscribers_joined", "Distinct subscribers that joined through the sync handshake.", func(s *st) float64 { return float64(s.Joined) }),
			gauge(sub, "quorum_live", "Subscribers that count toward the quorum now.", func(s *st) float64 { return float64(s.Live) }),
			gauge(sub, "quorum_needed", "Subscribers the quorum needs.", func(s *st) float64 { return float64(s.Need) }),
			gauge(sub, "quorum_reached", "1 once the quorum was reached (or forced by the proceed policy) and publishing started.", func(s *st) float64 { return bool01(s.Quorum) }),
			gauge(sub, "quorum_lost", "1 while a membership quorum reached before is lost.", func(s *st) float64 { return bool01(s.QuorumLost) }),
			gauge(sub, "publishing", "1 from the start of publishing until shutdown.", func(s *st) float64 { return bool01(s.Publishing) }),
			gauge(sub, "queued_bytes", "Bytes queued for subscribers in the PUB socket, each envelope counted once.", func(s *st) float64 { return float64(s.Wire.QueuedBytes) }),
			gauge(sub, "history_messages", "Messages retained for recovery.", func(s *st) float64 { return float64(s.Retained.Messages) }),
			gauge(sub, "history_bytes", "Memory the recovery history uses, in bytes.", func(s *st) float64 { return float64(s.Retained.Bytes) }),
			gauge(sub, "history_topics", "Topics the recovery history holds.", func(s *st) float64 { return float64(s.Retained.Topics) }),
			gauge(sub, "journal_stalled", "1 while the journal refuses batches (its disk is full, or it failed): publishing waits.", func(s *st) float64 { return bool01(s.KeepFailing || s.Journal.Failed) }),
		},
		refusals:    desc("handshake_refusals_total", "READY and BYE requests refused, by the error code answered.", "code"),
		connRefused: desc("connections_refused_total", "Connections closed on arrival because a limit was reached, by endpoint and limit.", "endpoint", "reason"),
		connClosed:  desc("connections_closed_total", "Connections closed for misbehaving, by endpoint and reason.", "endpoint", "reason"),
		connEvicted: desc("connections_evicted_total", "Connections closed to make room for a new one at a limit, by endpoint and limit.", "endpoint", "reason"),
		conns:       desc("connections", "Open connections, by endpoint.", "endpoint"),
		recovery:    desc("recovery_requests_total", "Recovery requests, by result: served (replayed what was held) or refused (answered with an error).", "result"),
	}
}

// Describe implements prometheus.Collector.
func (c *PublisherCollector) Describe(ch chan<- *prometheus.Desc) {
	describeScalars(ch, c.scalars)
	for _, d := range []*prometheus.Desc{c.refusals, c.connRefused, c.connClosed, c.connEvicted, c.conns, c.recovery} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats snapshot per call.
func (c *PublisherCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	collectScalars(ch, &st, c.scalars)
	cnt := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	var other uint64
	for code, n := range st.Refused {
		if !known(handshakeCodes, code) {
			other += n
		}
	}
	for _, code := range handshakeCodes {
		cnt(c.refusals, st.Refused[code], labelValue(code))
	}
	if other > 0 {
		cnt(c.refusals, other, "other")
	}
	w := st.Wire
	cnt(c.connEvicted, w.EvictedPending, endpointData, "pending")
	cnt(c.connEvicted, w.Evicted, endpointData, "conns")
	cnt(c.connEvicted, w.SubscriptionEvicted, endpointData, "subscription-budget")
	cnt(c.connRefused, w.RefusedPeers, endpointData, "peers")
	cnt(c.connRefused, w.RefusedPerIP, endpointData, "per-ip")
	cnt(c.connClosed, w.HandshakeFailed, endpointData, "handshake-failed")
	cnt(c.connClosed, w.TLSFailed, endpointData, "tls-failed")
	cnt(c.connClosed, w.RefusedIdentity, endpointData, "not-allowed")
	cnt(c.connClosed, w.BadInput, endpointData, "bad-input")
	cnt(c.connClosed, w.TooManySubscriptions, endpointData, "too-many-subscriptions")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(w.Peers), endpointData)
	c.collectServer(ch, endpointSync, st.SyncWire)
	c.collectServer(ch, endpointRecovery, st.RecoveryWire)
	cnt(c.recovery, st.Recovery.Served, "served")
	cnt(c.recovery, st.Recovery.Refused, "refused")
}

// collectServer exports the connection counts of the sync or recovery
// endpoint.
func (c *PublisherCollector) collectServer(ch chan<- prometheus.Metric, endpoint string, s coord.EndpointStats) {
	cnt := func(d *prometheus.Desc, v uint64, reason string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), endpoint, reason)
	}
	cnt(c.connEvicted, s.Evicted, "conns")
	cnt(c.connRefused, s.RefusedConns, "conns")
	cnt(c.connRefused, s.RefusedPerIP, "per-ip")
	cnt(c.connClosed, s.HandshakeFailed, "handshake-failed")
	cnt(c.connClosed, s.TLSFailed, "tls-failed")
	cnt(c.connClosed, s.BadInput, "bad-input")
	cnt(c.connClosed, s.IdleClosed, "idle")
	cnt(c.connClosed, s.HandlerErrors, "handler-error")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.Conns), endpoint)
}

func known(set []string, s string) bool {
	for _, k := range set {
		if k == s {
			return true
		}
	}
	return false
}
