package coord

import (
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/recovery"
)

// TestPublisherConfigFloors: every window, timeout and interval below its
// floor is refused by Validate, before anything is bound (a RepairWindow
// of 5 ns once panicked in time.NewTicker at Shutdown), and the floors
// themselves are accepted.
func TestPublisherConfigFloors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*PublisherConfig)
		want string // "" means valid
	}{
		{"defaults", func(*PublisherConfig) {}, ""},
		{"floors", func(c *PublisherConfig) {
			c.RepairWindow, c.HelloInterval, c.HeartbeatInterval, c.JoinTimeout = MinRepairWindow, MinInterval, MinInterval, MinJoinTimeout
			c.Wire.SlowTimeout, c.Wire.HandshakeTimeout = wire.MinSlowTimeout, wire.MinHandshakeTimeout
		}, ""},
		{"join timeout off", func(c *PublisherConfig) { c.JoinTimeout = -1 }, ""},
		{"repair window 5ns", func(c *PublisherConfig) { c.RepairWindow = 5 * time.Nanosecond }, "repair-window: 5ns is below 100ms"},
		{"repair window negative", func(c *PublisherConfig) { c.RepairWindow = -time.Second }, "repair-window: -1s is negative"},
		{"heartbeat 1ns", func(c *PublisherConfig) { c.HeartbeatInterval = time.Nanosecond }, "heartbeat: 1ns is below 10ms"},
		{"hello 1µs", func(c *PublisherConfig) { c.HelloInterval = time.Microsecond }, "hello-interval: 1µs is below 10ms"},
		{"join timeout 1ms", func(c *PublisherConfig) { c.JoinTimeout = time.Millisecond }, "join-timeout: 1ms is below 100ms"},
		{"slow timeout 1ns", func(c *PublisherConfig) { c.Wire.SlowTimeout = time.Nanosecond }, "PubWireConfig.SlowTimeout 1ns is below 100ms"},
		{"max queue bytes 1", func(c *PublisherConfig) { c.Wire.MaxQueueBytes = 1 }, "PubWireConfig.MaxQueueBytes 1 is below"},
		{"topics twice", func(c *PublisherConfig) { c.Topics = []string{"a", "a", "b"} }, `topics: "a" is listed twice`},
		{"history", func(c *PublisherConfig) { c.History = recovery.HistoryConfig{MaxMessages: 1, MaxBytes: 1} }, "history: "},
		{"limiter", func(c *PublisherConfig) { c.RecoveryLimit = recovery.LimiterConfig{RequestRate: 1} }, "recovery-limit: "},
		{"port 99999", func(c *PublisherConfig) { c.Bind = "tcp://127.0.0.1:99999" }, "bind: "},
		{"host 256.1.1.1", func(c *PublisherConfig) { c.SyncBind = "tcp://256.1.1.1:5562" }, "sync-bind: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loopbackConfig()
			tt.mod(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			if tt.want != "" {
				if _, err := NewPublisher(cfg); err == nil {
					t.Fatal("NewPublisher accepted what Validate refuses")
				}
			}
		})
	}
}

// TestPublisherConfigReportsEveryProblem: Validate lists every problem,
// one per line, not the first only.
func TestPublisherConfigReportsEveryProblem(t *testing.T) {
	cfg := loopbackConfig()
	cfg.RepairWindow, cfg.HeartbeatInterval, cfg.Wire.SlowTimeout = time.Nanosecond, time.Nanosecond, time.Nanosecond
	cfg.Topics = []string{"x", "x"}
	cfg.History = recovery.HistoryConfig{MaxMessages: -1, MaxTopicBytes: -1}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted five bad fields")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{"repair-window", "heartbeat", "SlowTimeout", "listed twice", "MaxMessages", "MaxTopicBytes", "MaxTopics"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no line about %s in:\n%s", want, err)
		}
	}
	if len(lines) != 7 {
		t.Errorf("%d lines, want 7:\n%s", len(lines), err)
	}
}

// TestSubscriberConfigFloors: the subscriber's timeouts, its stream's and
// its SUB socket's are refused below their floors, every one reported.
func TestSubscriberConfigFloors(t *testing.T) {
	ok := func() SubscriberConfig {
		return SubscriberConfig{Connect: "tcp://127.0.0.1:5561", Sync: "tcp://127.0.0.1:5562", Handler: func(Event) {}}
	}
	tests := []struct {
		name string
		mod  func(*SubscriberConfig)
		want string
	}{
		{"defaults", func(*SubscriberConfig) {}, ""},
		{"off", func(c *SubscriberConfig) { c.PublisherTimeout, c.Wire.IdleTimeout = -1, -1 }, ""},
		{"handshake 1ns", func(c *SubscriberConfig) { c.HandshakeTimeout = time.Nanosecond }, "handshake-timeout: 1ns is below 100ms"},
		{"publisher timeout 1ms", func(c *SubscriberConfig) { c.PublisherTimeout = time.Millisecond }, "publisher-timeout: 1ms is below 100ms"},
		{"repair timeout 5ns", func(c *SubscriberConfig) {
			c.Stream = recovery.DefaultStreamConfig()
			c.Stream.RepairTimeout = 5
		}, "stream: "},
		{"idle 1ms", func(c *SubscriberConfig) { c.Wire.IdleTimeout = time.Millisecond }, "SubWireConfig.IdleTimeout 1ms is below 100ms"},
		{"connect port 0", func(c *SubscriberConfig) { c.Connect = "tcp://127.0.0.1:0" }, "connect: "},
		{"connect port 70000", func(c *SubscriberConfig) { c.Sync = "tcp://127.0.0.1:70000" }, "sync: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok()
			tt.mod(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	cfg := ok()
	cfg.HandshakeTimeout, cfg.PublisherTimeout, cfg.Wire.IdleTimeout = 1, 1, 1
	cfg.Stream = recovery.StreamConfig{MaxHeldBytes: 1, RepairTimeout: 1, RetryBackoff: 1}
	if err := cfg.Validate(); err == nil || strings.Count(err.Error(), "\n") != 4 {
		t.Fatalf("five problems: Validate = %v, want five lines", err)
	}
}
