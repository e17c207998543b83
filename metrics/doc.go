// Package metrics exports a coord.Publisher's and a coord.Subscriber's
// Stats snapshots as Prometheus metrics, and serves them with health
// endpoints over HTTP.
//
// The collectors read Stats() once per scrape; coord itself knows nothing
// of Prometheus. Register them in any prometheus.Registerer:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewPublisherCollector(pub))
//	srv, err := metrics.Serve(cfg, metrics.NewHandler(reg, metrics.PublisherReadiness(pub)))
//
// Every metric is named syncmq_publisher_* or syncmq_subscriber_*, in
// base units (_seconds, _bytes), counters end in _total, and labels take
// values from small fixed sets (a loss cause, a handshake refusal code, an
// endpoint kind), never a topic, a subscriber or a peer address. A
// process that runs several publishers or subscribers tells them apart
// with prometheus.WrapRegistererWith and a label of its own choosing.
// docs/operations.md lists every metric.
//
// The handler serves /metrics, /healthz (the process is alive: always
// 200) and /readyz (200 when the Readiness says ready, else 503), each
// with a one-line body saying why.
package metrics
