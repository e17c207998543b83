package membership

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Profiles select memberlist's timing presets; see ProfileTimings.
const (
	// ProfileLocal is memberlist.DefaultLocalConfig: one host or loopback.
	ProfileLocal = "local"
	// ProfileLAN is memberlist.DefaultLANConfig: one data centre.
	ProfileLAN = "lan"
	// ProfileWAN is memberlist.DefaultWANConfig: across data centres.
	ProfileWAN = "wan"
)

// Defaults used by DefaultConfig and for zero Config fields.
const (
	// DefaultBindAddr is the address gossip binds to: loopback, so that a
	// node is not reachable from the network unless configured to be.
	DefaultBindAddr = "127.0.0.1"
	// DefaultPort is memberlist's customary gossip port (TCP and UDP).
	DefaultPort = 7946
	// DefaultEventBuffer is the capacity of the event queue.
	DefaultEventBuffer = 256
	// DefaultBroadcastTimeout bounds how long UpdateMeta and Shutdown wait for
	// their gossip to go out.
	DefaultBroadcastTimeout = 5 * time.Second
	// MinBroadcastTimeout is the smallest BroadcastTimeout: below it, a
	// leave is not gossiped before the node goes, and its peers take it
	// for a failure.
	MinBroadcastTimeout = 10 * time.Millisecond
)

// Config configures a Node. The zero value of every field has the meaning
// given in its comment; only Meta.Role is required. Config is copied by
// New; changing it afterwards has no effect.
type Config struct {
	// NodeName is this node's name in the cluster; it must be unique
	// among live members. Empty means the host name plus "-" and 8 random
	// hex digits.
	NodeName string

	// BindAddr is the IP address gossip listens on (TCP and UDP). Empty
	// means DefaultBindAddr (loopback); use "0.0.0.0" for all interfaces.
	BindAddr string

	// BindPort is the gossip port. 0 means the operating system chooses a
	// free port; Node.Addr reports the port actually bound. DefaultConfig
	// sets DefaultPort.
	BindPort int

	// AdvertiseAddr is the IP address peers should use to reach this node
	// (for NAT). Empty means the bound address, or a private address of
	// this host when bound to 0.0.0.0.
	AdvertiseAddr string

	// AdvertisePort is the port peers should use to reach this node. 0
	// means the bound port. Setting it requires AdvertiseAddr and a
	// non-zero BindPort (memberlist overrides it when BindPort is 0).
	AdvertisePort int

	// Join lists seed nodes as "host:port". Node.Join uses them when
	// called without seeds. New does not contact them.
	Join []string

	// Profile is ProfileLocal, ProfileLAN or ProfileWAN and sets the
	// failure-detection timings (see ProfileTimings). Empty means
	// ProfileLAN. Every node of a cluster should use the same profile.
	Profile string

	// SecretKey is the gossip encryption key: 16, 24 or 32 bytes for
	// AES-128, AES-192 or AES-256 (see ParseKey). Nil means no encryption.
	// With a key, all gossip in and out is encrypted and verified, so every
	// node of the cluster needs the same key.
	SecretKey []byte

	// Meta is this node's metadata, gossiped to every member. Role is
	// required; an empty NodeID is replaced by the node name. Its encoding
	// must fit in MetaMaxSize bytes (see Meta.MarshalBinary).
	Meta Meta

	// Logger receives this package's and memberlist's log lines (the
	// latter through a child logger named "memberlist"). Nil means no
	// logging.
	Logger *zap.Logger

	// EventBuffer is the capacity of the event queue between memberlist
	// and the consumer (the Events channel, or OnEvent). When it is full,
	// new events are dropped and counted in Stats.DroppedEvents rather than
	// stalling gossip. 0 means DefaultEventBuffer.
	EventBuffer int

	// OnEvent, if set, receives every event instead of the Events
	// channel. It is called from a single goroutine owned by the Node, in
	// event order, never concurrently with itself. It must return quickly
	// and must not call Shutdown or Close (they wait for it); events that
	// arrive while the queue is full are dropped as for the channel.
	OnEvent func(Event)

	// BroadcastTimeout bounds how long UpdateMeta and Shutdown wait for their
	// gossip to be sent when the context has no earlier deadline. 0 means
	// DefaultBroadcastTimeout; otherwise at least MinBroadcastTimeout.
	BroadcastTimeout time.Duration
}

// DefaultConfig returns a Config for a LAN node listening on
// DefaultBindAddr:DefaultPort. The caller must still set Meta.Role.
func DefaultConfig() Config {
	return Config{
		BindAddr:         DefaultBindAddr,
		BindPort:         DefaultPort,
		Profile:          ProfileLAN,
		EventBuffer:      DefaultEventBuffer,
		BroadcastTimeout: DefaultBroadcastTimeout,
	}
}

// Validate reports every invalid field, one error per line, each wrapping
// ErrInvalidConfig and naming its field. It does not modify c and does
// no I/O.
func (c Config) Validate() error {
	var errs []error
	if err := checkText("NodeName", c.NodeName); err != nil {
		errs = append(errs, chain(ErrInvalidConfig, "NodeName", err))
	}
	if c.BindAddr != "" && net.ParseIP(c.BindAddr) == nil {
		errs = append(errs, fmt.Errorf("%w: BindAddr %q is not an IP address", ErrInvalidConfig, c.BindAddr))
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		errs = append(errs, fmt.Errorf("%w: BindPort %d is not in 0-65535", ErrInvalidConfig, c.BindPort))
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		errs = append(errs, fmt.Errorf("%w: AdvertiseAddr %q is not an IP address", ErrInvalidConfig, c.AdvertiseAddr))
	}
	switch {
	case c.AdvertisePort < 0 || c.AdvertisePort > 65535:
		errs = append(errs, fmt.Errorf("%w: AdvertisePort %d is not in 0-65535", ErrInvalidConfig, c.AdvertisePort))
	case c.AdvertisePort != 0 && c.AdvertiseAddr == "":
		errs = append(errs, fmt.Errorf("%w: AdvertisePort is set but AdvertiseAddr is empty", ErrInvalidConfig))
	case c.AdvertisePort != 0 && c.BindPort == 0:
		errs = append(errs, fmt.Errorf("%w: AdvertisePort needs a fixed BindPort (memberlist replaces it when BindPort is 0)", ErrInvalidConfig))
	}
	for i, s := range c.Join {
		if err := checkSeed(s); err != nil {
			errs = append(errs, fmt.Errorf("%w: Join[%d] %q: %v", ErrInvalidConfig, i, s, err))
		}
	}
	if _, err := profileConfig(c.Profile); err != nil {
		errs = append(errs, fmt.Errorf("%w: Profile: %v", ErrInvalidConfig, err))
	}
	if err := checkKey(c.SecretKey); err != nil {
		errs = append(errs, chain(ErrInvalidConfig, "SecretKey", err))
	}
	if c.Meta.Leaving {
		errs = append(errs, fmt.Errorf("%w: Meta.Leaving is set; only Node.Leave sets it", ErrInvalidConfig))
	} else if _, err := c.Meta.MarshalBinary(); err != nil {
		errs = append(errs, chain(ErrInvalidConfig, "Meta", err))
	}
	if c.EventBuffer < 0 {
		errs = append(errs, fmt.Errorf("%w: EventBuffer %d is negative", ErrInvalidConfig, c.EventBuffer))
	}
	switch {
	case c.BroadcastTimeout < 0:
		errs = append(errs, fmt.Errorf("%w: BroadcastTimeout %v is negative", ErrInvalidConfig, c.BroadcastTimeout))
	case c.BroadcastTimeout > 0 && c.BroadcastTimeout < MinBroadcastTimeout:
		errs = append(errs, fmt.Errorf("%w: BroadcastTimeout %v is below %v", ErrInvalidConfig, c.BroadcastTimeout, MinBroadcastTimeout))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() (Config, error) {
	if c.NodeName == "" {
		name, err := defaultNodeName()
		if err != nil {
			return c, err
		}
		c.NodeName = name
	}
	if c.BindAddr == "" {
		c.BindAddr = DefaultBindAddr
	}
	if c.Profile == "" {
		c.Profile = ProfileLAN
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = DefaultEventBuffer
	}
	if c.BroadcastTimeout == 0 {
		c.BroadcastTimeout = DefaultBroadcastTimeout
	}
	if c.Meta.NodeID == "" {
		c.Meta.NodeID = c.NodeName
	}
	c.Join = slices.Clone(c.Join)
	c.SecretKey = slices.Clone(c.SecretKey)
	c.Meta.Topics = slices.Clone(c.Meta.Topics)
	return c, nil
}

// defaultNodeName returns the host name plus "-" and 8 random hex digits.
func defaultNodeName() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("membership: random node name: %w", err)
	}
	return host + "-" + hex.EncodeToString(b[:]), nil
}

// checkSeed checks that s is "host:port" with a non-empty host and a port
// in 1-65535.
func checkSeed(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port: %v", err)
	}
	if host == "" {
		return fmt.Errorf("empty host")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("port %q is not in 1-65535", port)
	}
	return nil
}
