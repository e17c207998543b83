package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/syncmq/syncmq/metrics"
	"go.uber.org/zap"
)

// CheckMetricsAddr returns the problem with a --metrics-addr value, or
// nil; empty means off and is fine.
func CheckMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if err := (metrics.ServerConfig{Addr: addr}).Validate(); err != nil {
		return fmt.Errorf("metrics-addr: %q is not host:port (e.g. :9100 for loopback, 0.0.0.0:9100 for every interface)", addr)
	}
	return nil
}

// ServeMetrics serves c's metrics, the Go runtime's and the process's on
// addr's /metrics, with /healthz and /readyz (see package metrics). An
// addr without a host (":9100") listens on loopback; one naming every
// interface ("0.0.0.0:9100") is warned about. It returns a nil server
// when addr is empty (metrics off). Stop it with StopMetrics.
func ServeMetrics(addr string, lg *zap.Logger, ready metrics.Readiness, c prometheus.Collector) (*metrics.Server, error) {
	if addr == "" {
		return nil, nil
	}
	reg, err := metrics.NewRegistry(c)
	if err != nil {
		return nil, err
	}
	cfg := metrics.DefaultServerConfig()
	cfg.Addr, cfg.Logger = addr, lg
	srv, err := metrics.Serve(cfg, metrics.NewHandler(reg, ready))
	if err != nil {
		return nil, err
	}
	if err := reg.Register(srv); err != nil {
		srv.Close()
		return nil, err
	}
	lg.Info("serving metrics and health", zap.String("addr", srv.Addr()),
		zap.Strings("paths", []string{"/metrics", "/healthz", "/readyz"}))
	return srv, nil
}

// metricsShutdown bounds how long the metrics server waits at exit for a
// scrape in progress.
const metricsShutdown = time.Second

// StopMetrics stops a server ServeMetrics returned (nil is fine), letting
// a scrape in progress finish for at most a second.
func StopMetrics(srv *metrics.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsShutdown)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
