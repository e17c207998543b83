package metrics

import "github.com/prometheus/client_golang/prometheus"

// Build describes the running binary for syncmq_build_info.
type Build struct {
	Version   string // module version, "(devel)" for a build from a checkout
	Revision  string // VCS revision, with "-modified" when the tree had changes; "" if unknown
	GoVersion string // the Go release it was built with
}

// NewBuildInfo returns a collector of syncmq_build_info: a gauge that is
// always 1, whose labels version, revision and goversion say which build
// is running, so a dashboard can join it to any other series by
// instance.
func NewBuildInfo(b Build) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{
			"version":   b.Version,
			"revision":  b.Revision,
			"goversion": b.GoVersion,
		},
	})
	g.Set(1)
	return g
}
