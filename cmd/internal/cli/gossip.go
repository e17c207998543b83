package cli

import (
	"net"
	"strconv"

	"github.com/spf13/pflag"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/membership"
)

// AddGossipFlags adds the membership flags both commands share.
func AddGossipFlags(fs *pflag.FlagSet) {
	fs.String("gossip-bind", "", "join a gossip cluster, listening on host:port (TCP and UDP; port 0: any). Default with --join: 127.0.0.1:0 when every seed is on loopback, else 0.0.0.0:7946")
	fs.StringSlice("join", nil, "gossip seeds host:port (comma-separated or repeated); retried until one answers")
	fs.String("node-name", "", "name in the gossip cluster, unique among live members (default: the --id, or a generated one)")
	fs.String("gossip-key", "", "gossip encryption key, base64 of 16, 24 or 32 bytes; every node needs the same (prefer the environment variable)")
	fs.String("gossip-profile", membership.ProfileLAN, "failure-detection timings: local, lan or wan (see docs/membership.md)")
	fs.String("advertise", "", "host or IP that peers use to reach this node's gossip and ZeroMQ endpoints (default: the bind address, or a private IP)")
}

// Gossip returns the gossip configuration, or nil when neither
// --gossip-bind nor --join is set.
func (c *Config) Gossip() (*coord.GossipConfig, error) {
	bind, err := c.String("gossip-bind")
	if err != nil {
		return nil, err
	}
	seeds, err := c.Strings("join")
	if err != nil {
		return nil, err
	}
	if bind == "" && len(seeds) == 0 {
		return nil, nil
	}
	if bind == "" {
		bind = defaultGossipBind(seeds)
	}
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, Usagef("gossip-bind: %q is not host:port", bind)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, Usagef("gossip-bind: port %q is not 0-65535", port)
	}
	if host == "" || host == "*" {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return nil, Usagef("gossip-bind: host %q is not an IP address", host)
	}
	gc := &coord.GossipConfig{Node: membership.Config{BindAddr: host, BindPort: p, Join: seeds}}
	if gc.Node.NodeName, err = c.String("node-name"); err != nil {
		return nil, err
	}
	if gc.Node.Profile, err = c.Choice("gossip-profile", membership.ProfileLocal, membership.ProfileLAN, membership.ProfileWAN); err != nil {
		return nil, err
	}
	key, err := c.String("gossip-key")
	if err != nil {
		return nil, err
	}
	if key != "" {
		if gc.Node.SecretKey, err = membership.ParseKey(key); err != nil {
			return nil, Usagef("gossip-key: %v", err)
		}
	}
	if gc.AdvertiseHost, err = c.String("advertise"); err != nil {
		return nil, err
	}
	if ip := net.ParseIP(gc.AdvertiseHost); ip != nil {
		gc.Node.AdvertiseAddr = gc.AdvertiseHost // memberlist wants an IP; a DNS name only goes into endpoints
	}
	return gc, nil
}

// defaultGossipBind keeps a loopback cluster on loopback, with any port so
// many nodes fit on one host, and otherwise listens on every interface at
// memberlist's customary port.
func defaultGossipBind(seeds []string) string {
	for _, s := range seeds {
		host, _, err := net.SplitHostPort(s)
		ip := net.ParseIP(host)
		if err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return net.JoinHostPort("0.0.0.0", strconv.Itoa(membership.DefaultPort))
		}
	}
	return "127.0.0.1:0"
}

// IsSet reports whether key was given by flag, environment or file rather
// than left at its default.
func (c *Config) IsSet(key string) bool { return c.v.IsSet(key) }
