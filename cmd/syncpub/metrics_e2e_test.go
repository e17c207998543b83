package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// httpGet returns the status and body of http://addr/path, or status 0
// when nothing answers (yet).
func httpGet(addr, path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue scrapes addr and returns the value of the unlabelled
// sample name (-1 when absent or unparsable).
func metricValue(addr, name string) float64 {
	code, body := httpGet(addr, "/metrics")
	if code != 200 {
		return -1
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil || mfs[name] == nil || len(mfs[name].GetMetric()) != 1 {
		return -1
	}
	m := mfs[name].GetMetric()[0]
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestCommandsServeMetrics: syncpub and syncsub with --metrics-addr
// serve /healthz, /readyz (503 before the quorum, 200 while publishing
// and while joined) and /metrics that move with the traffic; syncsub's
// count summary reports latency percentiles.
func TestCommandsServeMetrics(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pubEP, syncEP := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
	pubAddr := fmt.Sprintf("127.0.0.1:%d", clustertest.FreePort(t))
	subAddr := fmt.Sprintf("127.0.0.1:%d", clustertest.FreePort(t))
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", clustertest.FreeEndpoint(t),
		"--expect", "1", "--count", "5000", "--rate", "1000", "--metrics-addr", pubAddr, "--log-level", "warn")
	var body string
	clustertest.WaitFor(t, 30*time.Second, "syncpub's /readyz to answer", func() bool {
		var code int
		code, body = httpGet(pubAddr, "/readyz")
		return code != 0
	})
	if body != "waiting for the quorum: 0 of 1 subscribers\n" {
		t.Errorf("syncpub /readyz before the quorum: %q", body)
	}
	if code, body := httpGet(pubAddr, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("syncpub /healthz: %d %q", code, body)
	}
	if code, _ := httpGet(pubAddr, "/readyz"); code != 503 {
		t.Errorf("syncpub /readyz before the quorum: %d, want 503", code)
	}
	sub := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP, "--output", "count", "--metrics-addr", subAddr, "--log-level", "warn")
	clustertest.WaitFor(t, 30*time.Second, "syncpub ready and counting", func() bool {
		code, _ := httpGet(pubAddr, "/readyz")
		return code == 200 && metricValue(pubAddr, "syncmq_publisher_messages_total") > 0
	})
	clustertest.WaitFor(t, 30*time.Second, "syncsub ready and counting", func() bool {
		code, _ := httpGet(subAddr, "/readyz")
		return code == 200 && metricValue(subAddr, "syncmq_subscriber_messages_total") > 0 && metricValue(subAddr, "go_goroutines") > 0
	})
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	if code := sub.Wait(ctx); code != 0 {
		t.Fatalf("syncsub exited %d: %s", code, sub.Stderr.String())
	}
	out := sub.Stdout.String()
	if !zguideOK(out, 5000) || !strings.Contains(out, "\nlatency p50 ") || !strings.Contains(out, "(publish to deliver, 5000 live deliveries)") {
		t.Fatalf("syncsub printed %q: want the count summary with latency percentiles", out)
	}
	if code, _ := httpGet(pubAddr, "/healthz"); code != 0 {
		t.Errorf("syncpub's metrics endpoint still answers after it exited")
	}
}

// TestMetricsAddrUsage: a --metrics-addr that is not host:port is a
// configuration error.
func TestMetricsAddrUsage(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, bin := range []string{syncpub, syncsub} {
		p := proctest.Start(t, ctx, bin, "--metrics-addr", "9100", "--check-config")
		code := p.Wait(ctx)
		msg := p.Stderr.String()
		if code != 2 || !strings.Contains(msg, `metrics-addr: "9100": not host:port`) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q", bin, code, msg)
		}
	}
}
