package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/recovery"
	"github.com/syncmq/syncmq/relay"
)

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t testing.TB, addr string) families {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return families(mfs)
}

type families map[string]*dto.MetricFamily

// value returns the value of the sample of name whose labels include
// labels ("k=v" pairs), and whether there is one. A histogram's value is
// its sample count.
func (f families) value(name string, labels ...string) (float64, bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// expectation is one sample a scrape must show.
type expectation struct {
	name   string
	labels []string
	ok     func(float64) bool
	want   string
}

func eq(v float64) func(float64) bool      { return func(x float64) bool { return x == v } }
func atLeast(v float64) func(float64) bool { return func(x float64) bool { return x >= v } }

func expect(name string, ok func(float64) bool, want string, labels ...string) expectation {
	return expectation{name, labels, ok, want}
}

// check returns what in es the scrape does not show, "" when all hold.
func (f families) check(es []expectation) string {
	var bad []string
	for _, e := range es {
		v, found := f.value(e.name, e.labels...)
		if !found || !e.ok(v) {
			bad = append(bad, fmt.Sprintf("%s%v = %v (present %v), want %s", e.name, e.labels, v, found, e.want))
		}
	}
	return strings.Join(bad, "; ")
}

// eventually scrapes addr until es all hold (the subscriber refreshes
// some values on a 20 ms tick) or 30 s pass.
func eventually(t testing.TB, addr, what string, es ...expectation) families {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f := scrape(t, addr)
		bad := f.check(es)
		if bad == "" {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, bad)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitReady polls /readyz until it answers code.
func waitReady(t testing.TB, addr string, code int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, body := get(t, addr, "/readyz")
		if got == code {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz answers %d %q, want %d", got, body, code)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tally is a Handler that checks order and counts what it was handed.
type tally struct {
	mu                  sync.Mutex
	next                uint64
	delivered, replayed uint64
	lost                uint64
	causes              map[string]uint64
	errs                []string
}

func (r *tally) handle(ev coord.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Type {
	case coord.EventMessage:
		if ev.Seq != r.next+1 && r.next != 0 {
			r.errs = append(r.errs, fmt.Sprintf("seq %d after %d", ev.Seq, r.next))
		}
		r.next = ev.Seq
		r.delivered++
		if ev.Replay {
			r.replayed++
		}
	case coord.EventLoss:
		if ev.From != r.next+1 {
			r.errs = append(r.errs, fmt.Sprintf("loss from %d after %d", ev.From, r.next))
		}
		r.next = ev.To
		r.lost += ev.To - ev.From + 1
		if r.causes == nil {
			r.causes = map[string]uint64{}
		}
		r.causes[ev.Cause] += ev.To - ev.From + 1
	}
}

func (r *tally) counts() (next, delivered, replayed, lost uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next, r.delivered, r.replayed, r.lost
}

// TestMetricsFollowTheTraffic runs a publisher and two subscribers with
// metrics on real HTTP listeners and checks, by scraping /metrics with
// the Prometheus text parser, that the counters say what happened: the
// quorum gate (/readyz 503, then 200), traffic, a gap forced by a proxy
// that drops one message and its repair, then a cut longer than the
// publisher's retention and the explicit loss it causes.
func TestMetricsFollowTheTraffic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	cfg.Expect = 2
	cfg.MaxBatchRecords = 1 // one envelope per message: the proxy drops exactly one
	cfg.History = recovery.HistoryConfig{MaxBytes: 8 << 20, MaxMessages: 100, MaxTopics: 10}
	pub, err := coord.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pubSrv := serveTest(t, DefaultServerConfig(), NewHandler(mustRegistry(t, NewPublisherCollector(pub)), PublisherReadiness(pub)))

	if body := waitReady(t, pubSrv.Addr(), 503); body != "waiting for the quorum: 0 of 2 subscribers\n" {
		t.Errorf("/readyz before any subscriber: %q", body)
	}
	a, err := coord.NewSubscriber(coord.SubscriberConfig{Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: "a", Handler: func(coord.Event) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, pubSrv.Addr(), "/readyz"); code != 503 || body != "waiting for the quorum: 1 of 2 subscribers\n" {
		t.Errorf("/readyz with 1 of 2 joined: %d %q", code, body)
	}

	// Subscriber b reaches the data endpoint through a proxy that drops
	// the envelope of sequence 5 once, and can be cut.
	proxy := clustertest.NewProxy(t, pub.Endpoint())
	var dropped atomic.Bool
	proxy.SetDrop(func(frames [][]byte) bool {
		m, err := envelope.Decode(frames, envelope.Limits{})
		return err == nil && m.Kind == envelope.KindData && m.Seq == 5 && dropped.CompareAndSwap(false, true)
	})
	var bt tally
	b, err := coord.NewSubscriber(coord.SubscriberConfig{Connect: proxy.Endpoint(), Sync: pub.SyncEndpoint(), ID: "b", Handler: bt.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	subSrv := serveTest(t, DefaultServerConfig(), NewHandler(mustRegistry(t, NewSubscriberCollector(b)), SubscriberReadiness(b)))
	if body := waitReady(t, pubSrv.Addr(), 200); body != "publishing: quorum 2 of 2 subscribers\n" {
		t.Errorf("/readyz after the quorum: %q", body)
	}
	waitReady(t, subSrv.Addr(), 200)

	// Ten messages; b misses the fifth and repairs it.
	const size = 16
	payload := make([]byte, size)
	publish := func(n int) {
		for range n {
			if _, err := pub.Publish(ctx, "t", payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(10)
	eventually(t, subSrv.Addr(), "the repaired gap",
		expect("syncmq_subscriber_messages_total", eq(10), "10"),
		expect("syncmq_subscriber_bytes_total", eq(10*size), "160"),
		expect("syncmq_subscriber_gaps_total", eq(1), "1"),
		expect("syncmq_subscriber_repaired_messages_total", atLeast(1), "at least 1 (the dropped one)"),
		expect("syncmq_subscriber_repair_requests_total", atLeast(1), "at least 1"),
		expect("syncmq_subscriber_lost_messages_total", eq(0), "0", "cause=beyond-retention"),
		expect("syncmq_subscriber_delivery_latency_seconds", atLeast(1), "live deliveries"),
		expect("syncmq_subscriber_lag_messages", eq(0), "0"),
		expect("syncmq_subscriber_publishers_joined", eq(1), "1"),
	)
	if !dropped.Load() {
		t.Fatal("the proxy dropped nothing")
	}

	// Cut b off, publish three times the retention, heal: b learns of the
	// 300 it missed, repairs the 100 still held and reports the rest lost.
	proxy.Cut()
	if body := waitReady(t, subSrv.Addr(), 503); body != "disconnected from every publisher; reconnecting\n" {
		t.Errorf("/readyz of the cut subscriber: %q", body)
	}
	publish(300)
	proxy.Heal()
	deadline := time.Now().Add(time.Minute)
	for {
		if next, _, _, _ := bt.counts(); next == 310 {
			break
		}
		if time.Now().After(deadline) {
			next, d, r, l := bt.counts()
			t.Fatalf("b reached seq %d (delivered %d, replayed %d, lost %d), want 310", next, d, r, l)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitReady(t, subSrv.Addr(), 200)
	_, delivered, replayed, lost := bt.counts()
	bt.mu.Lock()
	errs, causes := bt.errs, bt.causes
	bt.mu.Unlock()
	if len(errs) > 0 || lost == 0 || causes["reconnect"] != lost || delivered+lost != 310 {
		t.Fatalf("b: delivered %d, lost %d by cause %v, order errors %v; want 310 in all, losses all reconnect", delivered, lost, causes, errs)
	}
	f := eventually(t, subSrv.Addr(), "the subscriber after the loss",
		expect("syncmq_subscriber_messages_total", eq(float64(delivered)), fmt.Sprint(delivered)),
		expect("syncmq_subscriber_bytes_total", eq(float64(delivered*size)), fmt.Sprint(delivered*size)),
		expect("syncmq_subscriber_repaired_messages_total", eq(float64(replayed)), fmt.Sprint(replayed)),
		expect("syncmq_subscriber_lost_messages_total", eq(float64(lost)), fmt.Sprint(lost), "cause=reconnect"),
		expect("syncmq_subscriber_loss_events_total", atLeast(1), "at least 1"),
		expect("syncmq_subscriber_gaps_total", atLeast(2), "at least 2"),
		expect("syncmq_subscriber_disconnects_total", atLeast(1), "at least 1"),
		expect("syncmq_subscriber_reconnects_total", atLeast(1), "at least 1"),
		expect("syncmq_subscriber_handshakes_total", atLeast(2), "at least 2 (join, rejoin)"),
		expect("syncmq_subscriber_delivery_latency_seconds", eq(float64(delivered-replayed)), fmt.Sprint(delivered-replayed)),
		expect("syncmq_subscriber_lag_messages", eq(0), "0"),
		expect("syncmq_subscriber_repairing_streams", eq(0), "0"),
		expect("syncmq_subscriber_publishers_connected", eq(1), "1"),
	)
	for _, c := range recovery.Causes() {
		if _, ok := f.value("syncmq_subscriber_lost_messages_total", "cause="+c.String()); !ok {
			t.Errorf("lost_messages_total has no series for cause %s: every cause is exported", c)
		}
	}

	eventually(t, pubSrv.Addr(), "the publisher",
		expect("syncmq_publisher_messages_total", eq(310), "310"),
		expect("syncmq_publisher_bytes_total", eq(310*size), fmt.Sprint(310*size)),
		expect("syncmq_publisher_batches_total", eq(310), "310 (one message per batch)"),
		expect("syncmq_publisher_handshakes_total", atLeast(3), "at least 3 (a, b, b again)"),
		expect("syncmq_publisher_handshake_refusals_total", eq(0), "0", "code=bad-nonce"),
		expect("syncmq_publisher_quorum_live", eq(2), "2"),
		expect("syncmq_publisher_quorum_needed", eq(2), "2"),
		expect("syncmq_publisher_quorum_reached", eq(1), "1"),
		expect("syncmq_publisher_quorum_lost", eq(0), "0"),
		expect("syncmq_publisher_publishing", eq(1), "1"),
		// The dropped record came over the recovery endpoint; what b
		// missed while cut, on its data connection when it rejoined
		// (a catch-up from where its stream stood).
		expect("syncmq_publisher_recovery_requests_total", atLeast(1), "at least 1", "result=served"),
		expect("syncmq_publisher_recovery_replayed_messages_total", atLeast(1), "at least 1 (the dropped one)"),
		expect("syncmq_publisher_catch_ups_total", atLeast(1), "at least 1 (b's rejoin)"),
		expect("syncmq_publisher_catch_up_bytes_total", atLeast(float64((replayed-1)*size)), fmt.Sprintf("at least %d", (replayed-1)*size)),
		expect("syncmq_publisher_history_messages", eq(100), "100 (the retention)"),
		expect("syncmq_publisher_history_evicted_messages_total", eq(210), "210"),
		expect("syncmq_publisher_connections", eq(2), "2", "endpoint=data"),
		expect("syncmq_publisher_connections_refused_total", eq(0), "0", "endpoint=data", "reason=per-ip"),
	)

	// b lost what the history had let go: the publisher's job did not
	// fully succeed, and Shutdown says so.
	var end *coord.EndError
	if err := pub.Shutdown(ctx); !errors.As(err, &end) || end.Lost["b"] != 200 || len(end.Unconfirmed) != 0 {
		t.Fatalf("Shutdown: %v, want b reported 200 lost", err)
	}
	if body := waitReady(t, pubSrv.Addr(), 503); body != "not publishing: shutting down\n" {
		t.Errorf("/readyz after Shutdown: %q", body)
	}
	if body := waitReady(t, subSrv.Addr(), 503); body != "no publisher joined: every publisher ended or is gone\n" {
		t.Errorf("/readyz of b after END: %q", body)
	}
}

func mustRegistry(t testing.TB, cs ...prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg, err := NewRegistry(cs...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// fixedPub and fixedSub serve one snapshot, for the lint.
type fixedPub struct{ st coord.PublisherStats }

func (f fixedPub) Stats() coord.PublisherStats { return f.st }

type fixedSub struct{ st coord.SubscriberStats }

func (f fixedSub) Stats() coord.SubscriberStats { return f.st }

type fixedRelay struct{ st relay.Stats }

func (f fixedRelay) Stats() relay.Stats { return f.st }

// TestMetricNamesFollowPrometheusConventions runs promlint over every
// metric the collectors export, and checks the prefix.
func TestMetricNamesFollowPrometheusConventions(t *testing.T) {
	sub := coord.SubscriberStats{LostByCause: map[recovery.Cause]uint64{recovery.CauseTimeout: 3}}
	sub.Latency.Counts[3], sub.Latency.Count, sub.Latency.Sum = 2, 2, 20*time.Microsecond
	pub := coord.PublisherStats{Refused: map[string]uint64{"bad_nonce": 1, "from-the-future": 2}}
	srv := serveTest(t, DefaultServerConfig(), http.NotFoundHandler())
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPublisherCollector(fixedPub{pub}), NewSubscriberCollector(fixedSub{sub}), NewRelayCollector(fixedRelay{relay.Stats{Forwarded: 5}}), srv,
		NewBuildInfo(Build{Version: "v1.2.3", Revision: "abc123-modified", GoVersion: "go1.26.8"}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	f := families{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "syncmq_") {
			t.Errorf("%s: not under the syncmq_ prefix", mf.GetName())
		}
		f[mf.GetName()] = mf
	}
	if v, _ := f.value("syncmq_publisher_handshake_refusals_total", "code=other"); v != 2 {
		t.Errorf("an unknown refusal code is not reported as other: %v", v)
	}
	if v, _ := f.value("syncmq_publisher_handshake_refusals_total", "code=bad-nonce"); v != 1 {
		t.Errorf("bad_nonce refusals: %v, want 1 under code=bad-nonce", v)
	}
	// Label values read alike whichever metric they are on: lower case
	// with hyphens, as the loss causes are (not bad_nonce beside per-ip).
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() != "syncmq_build_info" && !kebab.MatchString(l.GetValue()) {
					t.Errorf("%s{%s=%q}: label values are lower case with hyphens", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	bi := f["syncmq_build_info"].GetMetric()[0]
	if bi.GetGauge().GetValue() != 1 || len(bi.GetLabel()) != 3 {
		t.Errorf("syncmq_build_info %v: want 1 with version, revision and goversion", bi)
	}
	if v, _ := f.value("syncmq_subscriber_lost_messages_total", "cause=timeout"); v != 3 {
		t.Errorf("lost by cause timeout: %v, want 3", v)
	}
	h := f["syncmq_subscriber_delivery_latency_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetBucket()[3].GetCumulativeCount() != 2 || h.GetBucket()[3].GetUpperBound() != 10e-6 {
		t.Errorf("latency histogram %v: want 2 samples in the 10 µs bucket", h)
	}
}

// TestOperationsDocListsEveryMetric keeps the docs and the collectors in
// step: every metric exported is in the tables of docs/operations.md,
// and every syncmq_ name that document or the runbook mentions is
// exported.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile(filepath.Join("..", "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	srv := serveTest(t, DefaultServerConfig(), http.NotFoundHandler())
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewPublisherCollector(fixedPub{}), NewSubscriberCollector(fixedSub{}), NewRelayCollector(fixedRelay{}), srv, NewBuildInfo(Build{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
		if !strings.Contains(string(doc), "| `"+mf.GetName()+"` |") {
			t.Errorf("%s is not in the tables of docs/operations.md", mf.GetName())
		}
	}
	for file, text := range map[string][]byte{"operations.md": doc, "runbook.md": runbook} {
		for _, name := range regexp.MustCompile(`syncmq_[a-z_]+`).FindAllString(string(text), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
			if !exported[name] && !exported[base] {
				t.Errorf("docs/%s mentions %s, which is not exported", file, name)
			}
		}
	}
}
