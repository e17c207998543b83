package metrics

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/syncmq/syncmq/coord"
)

// Readiness says whether the process does its job now, and why in a few
// words. It must be safe from any goroutine and must not block.
type Readiness func() (ready bool, why string)

// PublisherReadiness is ready while src publishes with its quorum:
// reached (or forced by policy proceed), not lost, no shutdown started,
// and its journal (with a data directory) taking what it publishes.
func PublisherReadiness(src PublisherSource) Readiness {
	return func() (bool, string) { return PublisherReady(src.Stats()) }
}

// PublisherReady judges a publisher's snapshot as PublisherReadiness does.
func PublisherReady(st coord.PublisherStats) (bool, string) {
	switch {
	case !st.Quorum:
		return false, fmt.Sprintf("waiting for the quorum: %d of %d subscribers", st.Live, st.Need)
	case !st.Publishing:
		return false, "not publishing: shutting down"
	case st.QuorumLost:
		return false, fmt.Sprintf("quorum lost: %d of %d subscribers", st.Live, st.Need)
	case st.Journal.Failed:
		return false, "not publishing: the journal failed and refuses batches until the publisher restarts"
	case st.KeepFailing:
		return false, "publishing stalled: the journal cannot store batches (is its disk full?); they wait, nothing is sent"
	case st.Live < st.Need:
		return true, fmt.Sprintf("publishing with %d of %d subscribers (quorum timeout, policy proceed)", st.Live, st.Need)
	}
	return true, fmt.Sprintf("publishing: quorum %d of %d subscribers", st.Live, st.Need)
}

// SubscriberReadiness is ready while src has joined a publisher, its data
// connection is up and no gap is being repaired.
func SubscriberReadiness(src SubscriberSource) Readiness {
	return func() (bool, string) { return SubscriberReady(src.Stats()) }
}

// SubscriberReady judges a subscriber's snapshot as SubscriberReadiness
// does.
func SubscriberReady(st coord.SubscriberStats) (bool, string) {
	switch {
	case st.Joined == 0 && st.Handshakes == 0:
		return false, "not joined: no sync handshake completed yet"
	case st.Joined == 0:
		return false, "no publisher joined: every publisher ended or is gone"
	case st.Connected == 0:
		return false, "disconnected from every publisher; reconnecting"
	case st.Repairing > 0:
		return false, fmt.Sprintf("catching up: %d streams repairing, %d messages behind", st.Repairing, st.Lag)
	}
	if st.Joined == 1 {
		return true, "joined 1 publisher, caught up"
	}
	return true, fmt.Sprintf("joined %d publishers, caught up", st.Joined)
}

// scrapeTimeout bounds one /metrics request; the collectors only copy
// counters, so this is far more than needed.
const scrapeTimeout = 10 * time.Second

// maxScrapes bounds the /metrics requests served at once; more are
// answered 503.
const maxScrapes = 4

// NewHandler serves /metrics from g in the Prometheus text (or protobuf)
// exposition format, /healthz (200 "ok": the process is alive) and
// /readyz (200 or 503 with ready's reason; nil means always ready).
// Other paths answer 404, other methods than GET and HEAD 405.
func NewHandler(g prometheus.Gatherer, ready Readiness) http.Handler {
	if ready == nil {
		ready = func() (bool, string) { return true, "ready" }
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             scrapeTimeout,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := ready()
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		writeText(w, code, why)
	})
	return mux
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, body)
}
