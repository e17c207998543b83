package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// namespace prefixes every metric this package exports.
const namespace = "syncmq"

// scalar is one unlabelled metric read from a stats snapshot S.
type scalar[S any] struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*S) float64
}

func counter[S any](subsystem, name, help string, value func(*S) float64) scalar[S] {
	return scalar[S]{prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, nil, nil), prometheus.CounterValue, value}
}

func gauge[S any](subsystem, name, help string, value func(*S) float64) scalar[S] {
	return scalar[S]{prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, nil, nil), prometheus.GaugeValue, value}
}

func collectScalars[S any](ch chan<- prometheus.Metric, st *S, ms []scalar[S]) {
	for _, m := range ms {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(st))
	}
}

func describeScalars[S any](ch chan<- *prometheus.Desc, ms []scalar[S]) {
	for _, m := range ms {
		ch <- m.desc
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns a registry holding the Go runtime's and the
// process's standard collectors (go_*, process_*) and cs.
func NewRegistry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	cs = append([]prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}, cs...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
