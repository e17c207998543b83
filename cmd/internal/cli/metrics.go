package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/metrics"
	"go.uber.org/zap"
)

// CheckMetricsAddr returns the problem with a --metrics-addr value, or
// nil; empty means off and is fine.
func CheckMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if err := wire.CheckAddr(addr); err != nil {
		return fmt.Errorf("metrics-addr: %q: %v (e.g. :9100 for loopback, 0.0.0.0:9100 for every interface)", addr, err)
	}
	return nil
}

// CheckPprofAddr returns the problem with a --pprof value, or nil; empty
// means off. The profiler shows the process's internals and can be made
// to spend its CPU, so it listens on a loopback address only: reach it
// from elsewhere through an SSH tunnel.
func CheckPprofAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if err := wire.CheckAddr(addr); err != nil {
		return fmt.Errorf("pprof: %q: %v (e.g. 127.0.0.1:6060)", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("pprof: %q is not a loopback address: the profiler is served on 127.0.0.1, ::1 or localhost only", addr)
	}
	return nil
}

// ServeMetrics serves c's metrics, syncmq_build_info, the Go runtime's
// and the process's on addr's /metrics, with /healthz and /readyz (see
// package metrics). An addr without a host (":9100") listens on loopback;
// one naming every interface ("0.0.0.0:9100") is warned about. It returns a nil server when addr is empty (metrics
// off); an address it cannot listen on is a UsageError. Stop it with
// StopServer.
func ServeMetrics(addr string, lg *zap.Logger, ready metrics.Readiness, c prometheus.Collector) (*metrics.Server, error) {
	if addr == "" {
		return nil, nil
	}
	reg, err := metrics.NewRegistry(c, metrics.NewBuildInfo(Build()))
	if err != nil {
		return nil, err
	}
	cfg := metrics.DefaultServerConfig()
	cfg.Addr, cfg.Logger = addr, lg
	srv, err := metrics.Serve(cfg, metrics.NewHandler(reg, ready))
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("metrics-addr: %w", err)}
	}
	if err := reg.Register(srv); err != nil {
		srv.Close()
		return nil, err
	}
	lg.Info("serving metrics and health", zap.String("addr", srv.Addr()),
		zap.Strings("paths", []string{"/metrics", "/healthz", "/readyz"}))
	return srv, nil
}

// pprofWriteTimeout bounds one profiler request: a CPU profile or trace
// may last up to this long.
const pprofWriteTimeout = 2 * time.Minute

// ServePprof serves Go's profiler (net/http/pprof) under /debug/pprof/ on
// addr, which CheckPprofAddr accepted. It returns a nil server when addr
// is empty (off); an address it cannot listen on is a UsageError. Stop it
// with StopServer.
func ServePprof(addr string, lg *zap.Logger) (*metrics.Server, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	cfg := metrics.DefaultServerConfig()
	cfg.Addr, cfg.Logger, cfg.WriteTimeout, cfg.MaxConns = addr, lg, pprofWriteTimeout, 8
	srv, err := metrics.Serve(cfg, mux)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("pprof: %w", err)}
	}
	lg.Info("serving the Go profiler", zap.String("addr", srv.Addr()), zap.String("path", "/debug/pprof/"))
	return srv, nil
}

// serverShutdown bounds how long a metrics or profiler server waits at
// exit for a request in progress.
const serverShutdown = time.Second

// StopServer stops a server ServeMetrics or ServePprof returned (nil is
// fine), letting a request in progress finish for at most a second.
func StopServer(srv *metrics.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), serverShutdown)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
