package cli

import (
	"fmt"
	"net"
	"strconv"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/membership"
)

// GossipProfile names membership's failure-detection timings.
type GossipProfile string

// Choices lists the profiles.
func (GossipProfile) Choices() []string {
	return []string{membership.ProfileLocal, membership.ProfileLAN, membership.ProfileWAN}
}

// Gossip holds the membership settings both commands share. Embed it with
// `mapstructure:",squash"`.
type Gossip struct {
	GossipBind    string        `mapstructure:"gossip-bind" help:"join a gossip cluster, listening on host:port (TCP and UDP; port 0: any). Default with --join: 127.0.0.1:0 when every seed is on loopback, else 0.0.0.0:7946"`
	Join          []string      `mapstructure:"join" help:"gossip seeds host:port (comma-separated or repeated); retried until one answers"`
	NodeName      string        `mapstructure:"node-name" help:"name in the gossip cluster, unique among live members (default: the --id, or a generated one)"`
	GossipKey     string        `mapstructure:"gossip-key" secret:"true" help:"gossip encryption key, base64 of 16, 24 or 32 bytes; every node needs the same (prefer the environment variable)"`
	GossipProfile GossipProfile `mapstructure:"gossip-profile" help:"failure-detection timings (see docs/membership.md)"`
	Advertise     string        `mapstructure:"advertise" help:"host or IP that peers use to reach this node's gossip and ZeroMQ endpoints (default: the bind address, or a private IP)"`
}

// DefaultGossip returns the defaults: no gossip, LAN timings.
func DefaultGossip() Gossip { return Gossip{GossipProfile: membership.ProfileLAN} }

// Enabled reports whether gossip was asked for (--gossip-bind or --join).
func (g Gossip) Enabled() bool { return g.GossipBind != "" || len(g.Join) > 0 }

// Config returns the gossip configuration, or nil when gossip is off. It
// returns every problem it finds.
func (g Gossip) Config() (*coord.GossipConfig, []error) {
	if !g.Enabled() {
		return nil, nil
	}
	var problems []error
	bind := g.GossipBind
	if bind == "" {
		bind = defaultGossipBind(g.Join)
	}
	gc := &coord.GossipConfig{Node: membership.Config{Join: g.Join, NodeName: g.NodeName, Profile: string(g.GossipProfile)}}
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		problems = append(problems, fmt.Errorf("gossip-bind: %q is not host:port", bind))
	} else {
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			problems = append(problems, fmt.Errorf("gossip-bind: port %q is not 0-65535", port))
		}
		if host == "" || host == "*" {
			host = "0.0.0.0"
		}
		if net.ParseIP(host) == nil {
			problems = append(problems, fmt.Errorf("gossip-bind: host %q is not an IP address", host))
		}
		gc.Node.BindAddr, gc.Node.BindPort = host, p
	}
	if g.GossipKey != "" {
		if gc.Node.SecretKey, err = membership.ParseKey(g.GossipKey); err != nil {
			problems = append(problems, fmt.Errorf("gossip-key: %v", err))
		}
	}
	gc.AdvertiseHost = g.Advertise
	if ip := net.ParseIP(g.Advertise); ip != nil {
		gc.Node.AdvertiseAddr = g.Advertise // memberlist wants an IP; a DNS name only goes into endpoints
	}
	return gc, problems
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
