package wire

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParseEndpoint: ports outside 0-65535 and hosts that are neither an
// address nor a name are refused before anything is bound or dialed.
func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		ep, addr string
		bad      string // part of the error; "" means valid
	}{
		{"tcp://127.0.0.1:5561", "127.0.0.1:5561", ""},
		{"tls://*:5561", ":5561", ""},
		{"tcp://:0", ":0", ""},
		{"tcp://[::1]:5561", "[::1]:5561", ""},
		{"tcp://[fe80::1%eth0]:5561", "[fe80::1%eth0]:5561", ""},
		{"tcp://pub-1.example.org:5561", "pub-1.example.org:5561", ""},
		{"tcp://localhost:65535", "localhost:65535", ""},
		{"tcp://127.0.0.1:99999", "", `port "99999" is not a number from 0 to 65535`},
		{"tcp://127.0.0.1:-1", "", `port "-1"`},
		{"tcp://127.0.0.1:+80", "", `port "+80"`},
		{"tcp://127.0.0.1:http", "", `port "http"`},
		{"tcp://256.1.1.1:5561", "", `host "256.1.1.1" is not an IPv4 address`},
		{"tcp://1.2.3:5561", "", "not an IPv4 address"},
		{"tcp://pub host:5561", "", "is not a letter"},
		{"tcp://a..b:5561", "", "labels are 1 to 63 bytes"},
		{"tcp://" + strings.Repeat("a", 64) + ":1", "", "labels are 1 to 63 bytes"},
		{"udp://127.0.0.1:5561", "", "want tcp://host:port"},
		{"tcp://127.0.0.1", "", "missing port"},
	}
	for _, tt := range tests {
		_, addr, err := ParseEndpoint(tt.ep)
		switch {
		case tt.bad == "" && (err != nil || addr != tt.addr):
			t.Errorf("%s: %q, %v; want %q", tt.ep, addr, err, tt.addr)
		case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad) || !errors.Is(err, ErrBadEndpoint)):
			t.Errorf("%s: %v; want ErrBadEndpoint saying %q", tt.ep, err, tt.bad)
		}
	}
	for _, ep := range []string{"tcp://*:5561", "tcp://:5561", "tcp://127.0.0.1:0"} {
		if err := CheckDialEndpoint(ep); !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("CheckDialEndpoint(%s) = %v: cannot be dialed", ep, err)
		}
	}
	if err := CheckDialEndpoint("tls://pub.example.org:5561"); err != nil {
		t.Error(err)
	}
}

// TestConfigFloors: the wire layer's configurations refuse timeouts and
// queues below their floors, listing every problem, and accept the
// floors themselves.
func TestConfigFloors(t *testing.T) {
	if err := (PubConfig{SlowTimeout: MinSlowTimeout, HandshakeTimeout: MinHandshakeTimeout, QueueBytes: MinQueueBytes, MaxQueueBytes: MinQueueBytes}).Validate(); err != nil {
		t.Errorf("PubConfig at its floors: %v", err)
	}
	err := PubConfig{SlowTimeout: time.Nanosecond, HandshakeTimeout: time.Nanosecond, QueueBytes: 1, MaxQueueBytes: 1}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 3 {
		t.Errorf("PubConfig below four floors: %v", err)
	}
	if err := (PubConfig{MaxQueueBytes: 1}).Validate(); err == nil || !strings.Contains(err.Error(), "below QueueBytes") {
		t.Errorf("MaxQueueBytes 1 with the default QueueBytes: %v", err)
	}
	if _, err := Listen("tcp://127.0.0.1:0", PubConfig{SlowTimeout: time.Nanosecond}); err == nil {
		t.Error("Listen took a SlowTimeout of 1ns")
	}
	if err := (ServerConfig{HandshakeTimeout: MinHandshakeTimeout, WriteTimeout: MinServerTimeout, IdleTimeout: MinServerTimeout}).Validate(); err != nil {
		t.Errorf("ServerConfig at its floors: %v", err)
	}
	if err := (ServerConfig{HandshakeTimeout: 1, WriteTimeout: 1, IdleTimeout: 1}).Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("ServerConfig below three floors: %v", err)
	}
	if err := (SubConfig{ReconnectMin: MinReconnect, HandshakeTimeout: MinHandshakeTimeout, IdleTimeout: MinIdleTimeout}).Validate(); err != nil {
		t.Errorf("SubConfig at its floors: %v", err)
	}
	if err := (SubConfig{ReconnectMin: 1, ReconnectMax: 1, HandshakeTimeout: 1, IdleTimeout: 1}).Validate(); err == nil || strings.Count(err.Error(), "\n") != 3 {
		t.Errorf("SubConfig below four floors: %v", err)
	}
}
