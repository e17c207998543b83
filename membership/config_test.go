package membership

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Meta = Meta{Role: RoleSubscriber}
		return c
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("DefaultConfig with a role: %v", err)
	}
	if err := (Config{Meta: Meta{Role: RolePublisher}}).Validate(); err != nil {
		t.Fatalf("zero Config with a role: %v", err)
	}

	cases := []struct {
		name   string
		modify func(*Config)
		field  string // must appear in the message; "" = valid
	}{
		{"ipv6 bind", func(c *Config) { c.BindAddr = "::1" }, ""},
		{"all interfaces", func(c *Config) { c.BindAddr = "0.0.0.0" }, ""},
		{"advertise", func(c *Config) { c.AdvertiseAddr = "192.0.2.1"; c.AdvertisePort = 9000 }, ""},
		{"seeds", func(c *Config) { c.Join = []string{"10.0.0.1:7946", "seed.example.com:7946", "[::1]:1"} }, ""},
		{"profiles", func(c *Config) { c.Profile = ProfileWAN }, ""},
		{"key", func(c *Config) { c.SecretKey = make([]byte, 24) }, ""},
		{"bind host name", func(c *Config) { c.BindAddr = "localhost" }, "BindAddr"},
		{"bind port negative", func(c *Config) { c.BindPort = -1 }, "BindPort"},
		{"bind port too big", func(c *Config) { c.BindPort = 65536 }, "BindPort"},
		{"advertise not IP", func(c *Config) { c.AdvertiseAddr = "example.com" }, "AdvertiseAddr"},
		{"advertise port range", func(c *Config) { c.AdvertiseAddr = "192.0.2.1"; c.AdvertisePort = 70000 }, "AdvertisePort"},
		{"advertise port alone", func(c *Config) { c.AdvertisePort = 9000 }, "AdvertisePort"},
		{"advertise port dynamic bind", func(c *Config) { c.AdvertiseAddr = "192.0.2.1"; c.AdvertisePort = 9000; c.BindPort = 0 }, "AdvertisePort"},
		{"seed without port", func(c *Config) { c.Join = []string{"10.0.0.1"} }, "Join[0]"},
		{"seed port 0", func(c *Config) { c.Join = []string{"ok:1", "host:0"} }, "Join[1]"},
		{"seed empty host", func(c *Config) { c.Join = []string{":7946"} }, "Join[0]"},
		{"profile", func(c *Config) { c.Profile = "fast" }, "Profile"},
		{"key length", func(c *Config) { c.SecretKey = make([]byte, 20) }, "SecretKey"},
		{"no role", func(c *Config) { c.Meta.Role = "" }, "Meta"},
		{"bad endpoint", func(c *Config) { c.Meta.PubEndpoint = "tcp://*:1" }, "PubEndpoint"},
		{"leaving", func(c *Config) { c.Meta.Leaving = true }, "Meta.Leaving"},
		{"node name", func(c *Config) { c.NodeName = "a\x00b" }, "NodeName"},
		{"event buffer", func(c *Config) { c.EventBuffer = -1 }, "EventBuffer"},
		{"broadcast timeout", func(c *Config) { c.BroadcastTimeout = -time.Second }, "BroadcastTimeout"},
		{"broadcast timeout 1ns", func(c *Config) { c.BroadcastTimeout = time.Nanosecond }, "BroadcastTimeout 1ns is below 10ms"},
		{"broadcast timeout at its floor", func(c *Config) { c.BroadcastTimeout = MinBroadcastTimeout }, ""},
	}
	all := valid()
	all.NodeName, all.EventBuffer, all.BroadcastTimeout = "a\x00b", -1, time.Nanosecond
	if err := all.Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("three bad fields: Validate = %v, want three lines", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.modify(&c)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.field) || !strings.HasPrefix(msg, "membership: invalid config: ") ||
				strings.Count(msg, "membership:") != 1 {
				t.Errorf("message %q should name %s once", msg, tc.field)
			}
		})
	}
}

func TestConfigValidateWrapsCause(t *testing.T) {
	c := Config{Meta: Meta{Role: RolePublisher}, SecretKey: []byte{1}}
	if err := c.Validate(); !errors.Is(err, ErrBadKey) {
		t.Errorf("key error %v does not wrap ErrBadKey", err)
	}
	c = Config{Meta: Meta{Role: "x"}}
	if err := c.Validate(); !errors.Is(err, ErrBadMeta) {
		t.Errorf("meta error %v does not wrap ErrBadMeta", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	in := Config{Meta: Meta{Role: RolePublisher, Topics: []string{"a"}}, Join: []string{"h:1"}}
	c, err := in.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName == "" || c.Meta.NodeID != c.NodeName || c.BindAddr != DefaultBindAddr || c.BindPort != 0 ||
		c.Profile != ProfileLAN || c.Logger == nil || c.EventBuffer != DefaultEventBuffer ||
		c.BroadcastTimeout != DefaultBroadcastTimeout {
		t.Errorf("withDefaults = %+v", c)
	}
	c.Join[0], c.Meta.Topics[0] = "changed", "changed"
	if in.Join[0] != "h:1" || in.Meta.Topics[0] != "a" {
		t.Error("withDefaults shares slices with its input")
	}
	other, _ := in.withDefaults()
	if other.NodeName == c.NodeName {
		t.Errorf("default node names collide: %s", c.NodeName)
	}
}
