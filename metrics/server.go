package metrics

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/syncmq/syncmq/internal/ratelog"
	"go.uber.org/zap"
)

// ServerConfig configures the HTTP server of Serve. Use
// DefaultServerConfig and change what you need.
type ServerConfig struct {
	// Addr is the TCP address to listen on, "host:port"; port 0 lets the
	// OS choose (see Server.Addr). An empty host means loopback
	// (127.0.0.1): metrics and health say a lot about a process, so
	// every interface ("0.0.0.0:9100", "[::]:9100") must be asked for,
	// and Serve then logs a warning. Required.
	Addr string
	// MaxConns bounds the connections open at once. One more closes the
	// connection idle the longest (no request in progress: it has not
	// sent a byte yet, or it is kept alive between requests), counted in
	// ServerStats.Evicted, so idle connections cannot keep a scrape or a
	// probe out; it is closed on arrival (ServerStats.Refused) only when
	// every open connection is in a request. Zero means 64.
	MaxConns int
	// ReadHeaderTimeout bounds reading a request's headers. Zero means 5 s;
	// at least MinServerTimeout.
	ReadHeaderTimeout time.Duration
	// WriteTimeout bounds handling a request and writing its response.
	// Zero means 30 s; at least MinServerTimeout.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection idle this long. Zero
	// means 60 s; at least MinServerTimeout.
	IdleTimeout time.Duration
	// Logger receives refused connections and HTTP errors, at most one
	// line per kind per 10 s; nil means none.
	Logger *zap.Logger
}

// DefaultServerConfig returns the defaults (Addr is left empty).
func DefaultServerConfig() ServerConfig {
	return ServerConfig{MaxConns: 64, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
}

// MinServerTimeout is the smallest timeout of a ServerConfig (zero means
// the default): below it, a scraper on a busy host would be cut off
// mid-request.
const MinServerTimeout = 100 * time.Millisecond

// Validate reports every invalid field.
func (c ServerConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("metrics address %q: want host:port (%v)", c.Addr, err))
	}
	if c.MaxConns < 0 || c.ReadHeaderTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("metrics server: limits and timeouts must not be negative"))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"WriteTimeout", c.WriteTimeout}, {"IdleTimeout", c.IdleTimeout}} {
		if t.d > 0 && t.d < MinServerTimeout {
			errs = append(errs, fmt.Errorf("metrics server: %s %v is below %v", t.name, t.d, MinServerTimeout))
		}
	}
	return errors.Join(errs...)
}

func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultServerConfig()
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// ServerStats counts what the server refused.
type ServerStats struct {
	Conns   int    // connections open now
	Refused uint64 // connections closed on arrival: MaxConns were open, all in a request
	Evicted uint64 // idle connections closed to make room for a new one at MaxConns
}

// Server serves one http.Handler (usually NewHandler's) on a TCP
// listener of its own. It is also a prometheus.Collector of its own
// counters (syncmq_metrics_http_*).
type Server struct {
	srv  *http.Server
	ln   *limitListener
	done chan struct{} // closed when Serve's goroutine returned

	stopOnce sync.Once
	stopErr  error

	connsDesc, refusedDesc, evictedDesc *prometheus.Desc
}

// Serve listens on cfg.Addr and serves h on its own goroutine. It does
// not block; stop it with Shutdown or Close.
func Serve(cfg ServerConfig, h http.Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	addr, everywhere := listenAddr(cfg.Addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	lg := cfg.Logger.Named("metrics")
	if everywhere {
		lg.Warn("the metrics and health endpoint listens on every interface: whoever reaches this host can read it; give a host (127.0.0.1:PORT, or one interface's address) to narrow it",
			zap.String("addr", ln.Addr().String()))
	}
	rl := ratelog.New(lg, 0)
	s := &Server{
		ln:   newLimitListener(ln, cfg.MaxConns, rl),
		done: make(chan struct{}),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          log.New(errorLog{rl}, "", 0),
		},
		connsDesc:   prometheus.NewDesc("syncmq_metrics_http_connections", "Connections open to the metrics and health endpoint.", nil, nil),
		refusedDesc: prometheus.NewDesc("syncmq_metrics_http_refused_connections_total", "Connections to the metrics and health endpoint closed on arrival: the connection limit was reached and every connection was in a request.", nil, nil),
		evictedDesc: prometheus.NewDesc("syncmq_metrics_http_evicted_connections_total", "Idle connections to the metrics and health endpoint closed to make room for a new one at the connection limit.", nil, nil),
	}
	s.srv.ConnState = s.ln.track
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.ln) // ErrServerClosed once stopped; nothing else ends it
	}()
	return s, nil
}

// Addr returns the address listened on, with the port the OS chose.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stats returns the server's counters. Safe from any goroutine.
func (s *Server) Stats() ServerStats {
	return ServerStats{Conns: int(s.ln.open.Load()), Refused: s.ln.refused.Load(), Evicted: s.ln.evicted.Load()}
}

// Shutdown stops accepting, lets the requests in progress finish, bounded
// by ctx, and waits for the serving goroutine. It returns ctx.Err() if
// ctx ended first (the remaining connections are then closed).
// Idempotent: later calls, and Close, return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.srv.Shutdown(ctx)
		if s.stopErr != nil {
			_ = s.srv.Close()
		}
		<-s.done
	})
	return s.stopErr
}

// Close stops at once: the listener and every connection are closed. It
// waits for the serving goroutine and is idempotent.
func (s *Server) Close() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.srv.Close()
		<-s.done
	})
	return s.stopErr
}

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.connsDesc
	ch <- s.refusedDesc
	ch <- s.evictedDesc
}

// Collect implements prometheus.Collector.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	ch <- prometheus.MustNewConstMetric(s.connsDesc, prometheus.GaugeValue, float64(st.Conns))
	ch <- prometheus.MustNewConstMetric(s.refusedDesc, prometheus.CounterValue, float64(st.Refused))
	ch <- prometheus.MustNewConstMetric(s.evictedDesc, prometheus.CounterValue, float64(st.Evicted))
}

// listenAddr returns the address to listen on for addr, loopback when
// addr names no host, and whether it is every interface.
func listenAddr(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, false // Validate refused it already
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), false
	}
	ip := net.ParseIP(host)
	return addr, ip != nil && ip.IsUnspecified()
}

// limitListener keeps at most max connections open: at the bound, a new
// connection closes the one idle the longest (no request in progress),
// or is closed itself when every open one is in a request. It learns
// each connection's state from the http.Server (track).
type limitListener struct {
	net.Listener
	max     int64
	rl      *ratelog.Logger
	open    atomic.Int64
	refused atomic.Uint64
	evicted atomic.Uint64

	mu    sync.Mutex
	conns map[*limitConn]struct{}
}

func newLimitListener(ln net.Listener, max int, rl *ratelog.Logger) *limitListener {
	return &limitListener{Listener: ln, max: int64(max), rl: rl, conns: make(map[*limitConn]struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			victim := l.idlest()
			if victim == nil {
				l.refused.Add(1)
				l.rl.Warn("max-conns", "metrics endpoint: connection limit reached, every connection in a request; closed a new connection",
					zap.Int64("max_conns", l.max), zap.String("remote", c.RemoteAddr().String()))
				_ = c.Close()
				continue
			}
			_ = victim.Close() // frees its place at once
			l.evicted.Add(1)
			l.rl.Warn("evicted", "metrics endpoint: connection limit reached; closed the connection idle the longest",
				zap.Int64("max_conns", l.max), zap.String("remote", victim.RemoteAddr().String()), zap.String("new", c.RemoteAddr().String()))
			l.open.Add(1)
		}
		lc := &limitConn{Conn: c, l: l, state: http.StateNew, since: time.Now()}
		l.mu.Lock()
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		return lc, nil
	}
}

// idlest returns the open connection idle the longest, nil if every one
// is in a request.
func (l *limitListener) idlest() *limitConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var victim *limitConn
	for c := range l.conns {
		if c.state != http.StateNew && c.state != http.StateIdle {
			continue
		}
		if victim == nil || c.since.Before(victim.since) {
			victim = c
		}
	}
	return victim
}

// track is the http.Server's ConnState hook.
func (l *limitListener) track(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*limitConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, open := l.conns[c]; open {
		c.state, c.since = st, time.Now()
	}
}

// limitConn is a connection the limitListener counts; its state and
// since (when it entered it) are guarded by the listener's mu.
type limitConn struct {
	net.Conn
	l     *limitListener
	once  sync.Once
	state http.ConnState
	since time.Time
}

func (c *limitConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.open.Add(-1)
	})
	return c.Conn.Close()
}

// errorLog turns the http.Server's error lines (bad requests, broken
// connections: what any client can cause) into rate-limited warnings.
type errorLog struct{ rl *ratelog.Logger }

func (e errorLog) Write(p []byte) (int, error) {
	e.rl.Warn("http-error", "metrics endpoint: HTTP error", zap.String("error", strings.TrimSpace(string(p))))
	return len(p), nil
}
