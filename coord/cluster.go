package coord

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/syncmq/syncmq/internal/gogroup"
	"github.com/syncmq/syncmq/membership"
	"go.uber.org/zap"
)

// GossipConfig joins a Publisher or Subscriber to a membership cluster
// (hashicorp/memberlist, see package membership), so that nodes find each
// other and notice failures. A publisher advertises its endpoints and
// topics; a subscriber advertises its subscriptions and connects to every
// publisher whose topics match, including those that come later.
type GossipConfig struct {
	// Node configures the gossip node: bind address and port, seeds
	// (Join), profile, key and name. Meta is filled in by coord; leave it
	// zero. An empty NodeName means the subscriber's ID, or "pub-" and the
	// publisher's short ID.
	Node membership.Config
	// AdvertiseHost is the host written into advertised endpoints that are
	// bound to a wildcard ("tcp://*:5561"); empty means the host of this
	// node's gossip address.
	AdvertiseHost string
	// JoinRetry is the pause between attempts to reach the seeds while
	// none answered; joining is retried until a seed answers or Close.
	// Default 1 s.
	JoinRetry time.Duration
	// ReconnectInterval is how often the node tries to reach members it
	// declared failed, and its seeds when it is alone. memberlist never
	// probes a dead member again, so without this the two sides of a
	// healed partition would stay apart. Default 5 s.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a failed member is tried before it is
	// forgotten. Default 1 h.
	ReconnectTimeout time.Duration
	// OnMember, if set, receives every membership event after coord acted
	// on it. It is called from one goroutine, in event order, never
	// concurrently with itself; it must return quickly. It may call Close
	// or Shutdown of the Publisher or Subscriber it belongs to.
	OnMember func(membership.Event)
}

func (c *GossipConfig) validate() error {
	if c.Node.Meta.Role != "" || c.Node.Meta.PubEndpoint != "" || len(c.Node.Meta.Topics) > 0 {
		return errors.New("gossip: Node.Meta is filled in by coord; leave it zero")
	}
	if c.JoinRetry < 0 || c.ReconnectInterval < 0 || c.ReconnectTimeout < 0 {
		return errors.New("gossip: join-retry and reconnect times must not be negative")
	}
	c2 := c.Node
	c2.Meta.Role = membership.RoleSubscriber // checked for real at start
	if err := c2.Validate(); err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	return nil
}

// cluster is a node's gossip membership: the memberlist node, the
// goroutine that joins the seeds, and the one that turns events into
// reconcile calls.
type cluster struct {
	cfg    GossipConfig
	node   *membership.Node
	lg     *zap.Logger
	g      gogroup.Group
	cancel context.CancelFunc

	failed    map[string]failedMember // by name; events goroutine only
	rejoining atomic.Bool             // a reconnect attempt is running
}

// failedMember is a member declared failed that reconnect keeps trying.
type failedMember struct {
	addr  string
	since time.Time
}

// reconcileFunc brings a node's state in line with the live members (this
// node excluded); ev is the event that prompted it, or nil.
type reconcileFunc func(members []membership.Member, ev *membership.Event)

// startCluster starts gossiping with meta. reconcile is called from one
// goroutine after every event, after a successful join and once a second
// (events can be dropped under load; the member list is the truth), then
// OnMember gets the event.
func startCluster(cfg GossipConfig, meta membership.Meta, lg *zap.Logger, reconcile reconcileFunc) (*cluster, error) {
	nc := cfg.Node
	nc.Meta = meta
	if nc.Logger == nil {
		nc.Logger = lg
	}
	node, err := membership.New(nc)
	if err != nil {
		return nil, err
	}
	if cfg.JoinRetry <= 0 {
		cfg.JoinRetry = time.Second
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = 5 * time.Second
	}
	if cfg.ReconnectTimeout <= 0 {
		cfg.ReconnectTimeout = time.Hour
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{cfg: cfg, node: node, lg: lg, cancel: cancel, failed: make(map[string]failedMember)}
	joined := make(chan struct{}, 1)
	c.g.Go(func() { c.events(ctx, joined, reconcile) })
	if len(nc.Join) > 0 {
		c.g.Go(func() { c.join(ctx, joined) })
	}
	return c, nil
}

// join contacts the seeds until one answers. Seeds that are not up yet
// (subscribers started before the publisher) are normal, so failures are
// retried; a key mismatch is logged as an error, since retrying cannot fix
// it, but retried too in case the operator fixes the seed.
func (c *cluster) join(ctx context.Context, joined chan<- struct{}) {
	for attempt := 1; ; attempt++ {
		n, err := c.node.Join(ctx, nil)
		if err == nil {
			c.lg.Info("joined gossip cluster", zap.Int("seeds_reached", n), zap.Int("members", len(c.node.Members())))
			joined <- struct{}{}
			return
		}
		if attempt == 1 || attempt%30 == 0 { // say it, then remind now and then
			fields := []zap.Field{zap.Strings("seeds", c.cfg.Node.Join), zap.Int("attempt", attempt), zap.Error(err)}
			if errors.Is(err, membership.ErrKeyMismatch) {
				c.lg.Error("gossip join rejected: the seeds use another gossip key (or none)", fields...)
			} else {
				c.lg.Warn("gossip seeds not reachable yet; retrying", fields...)
			}
		}
		t := time.NewTimer(c.cfg.JoinRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func (c *cluster) events(ctx context.Context, joined <-chan struct{}, reconcile reconcileFunc) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	retry := time.NewTicker(c.cfg.ReconnectInterval)
	defer retry.Stop()
	for {
		select {
		case ev, ok := <-c.node.Events():
			if !ok {
				return
			}
			c.track(ev)
			reconcile(c.members(), &ev)
			if c.cfg.OnMember != nil {
				c.cfg.OnMember(ev)
			}
		case <-joined:
			reconcile(c.members(), nil)
		case <-tick.C:
			reconcile(c.members(), nil)
		case now := <-retry.C:
			c.reconnect(ctx, now)
		case <-ctx.Done():
			return
		}
	}
}

// track remembers failed members for reconnect and forgets those that
// came back or left on purpose.
func (c *cluster) track(ev membership.Event) {
	switch ev.Type {
	case membership.EventFailed:
		c.failed[ev.Member.Name] = failedMember{addr: ev.Member.Addr, since: time.Now()}
	case membership.EventJoin, membership.EventUpdate, membership.EventLeave:
		if _, ok := c.failed[ev.Member.Name]; ok && ev.Type != membership.EventLeave {
			c.lg.Info("failed member is back", zap.String("node", ev.Member.Name))
		}
		delete(c.failed, ev.Member.Name)
	}
}

// reconnect tries, in the background, to reach the members declared
// failed, and the seeds when this node is alone. A partition that heals
// is merged this way, as serf's reconnect does for Consul.
func (c *cluster) reconnect(ctx context.Context, now time.Time) {
	var addrs []string
	for name, f := range c.failed {
		if now.Sub(f.since) > c.cfg.ReconnectTimeout {
			delete(c.failed, name)
			continue
		}
		addrs = append(addrs, f.addr)
	}
	if len(c.members()) == 0 {
		addrs = append(addrs, c.cfg.Node.Join...)
	}
	if len(addrs) == 0 || !c.rejoining.CompareAndSwap(false, true) {
		return
	}
	c.g.Go(func() {
		defer c.rejoining.Store(false)
		if n, err := c.node.Join(ctx, addrs); err == nil {
			c.lg.Info("reconnected to gossip members", zap.Strings("tried", addrs), zap.Int("reached", n))
		}
	})
}

// members returns the live members, this node excluded; nil for a nil
// cluster (no gossip).
func (c *cluster) members() []membership.Member {
	if c == nil {
		return nil
	}
	all := c.node.Members()
	out := all[:0]
	for _, m := range all {
		if !m.Local {
			out = append(out, m)
		}
	}
	return out
}

// addr returns the bound gossip address, or "" for a nil cluster.
func (c *cluster) addr() string {
	if c == nil {
		return ""
	}
	return c.node.Addr()
}

// advertiseHost is the host peers use for this node's endpoints:
// AdvertiseHost, else the gossip advertise or bind address, else (bound to
// every interface) the private IP memberlist itself would advertise.
func advertiseHost(cfg *GossipConfig) (string, error) {
	for _, h := range []string{cfg.AdvertiseHost, cfg.Node.AdvertiseAddr, cfg.Node.BindAddr} {
		if h != "" && !wildcardHost(h) {
			return h, nil
		}
	}
	if cfg.Node.BindAddr == "" {
		return membership.DefaultBindAddr, nil
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil || ip == "" {
		return "", fmt.Errorf("gossip: bound to %s and no private IP found to advertise; set the advertise host", cfg.Node.BindAddr)
	}
	return ip, nil
}

func wildcardHost(h string) bool {
	return h == "" || h == "*" || h == "0.0.0.0" || h == "::" || h == "[::]"
}

// advertiseEndpoint turns a bound endpoint into one peers can dial: a
// wildcard host becomes host; the scheme (tcp://, tls://) stays.
func advertiseEndpoint(endpoint, host string) string {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok || (scheme != "tcp" && scheme != "tls") {
		return endpoint
	}
	h, port, err := net.SplitHostPort(rest)
	if err != nil || !wildcardHost(h) {
		return endpoint
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// close leaves the cluster (peers see a leave, not a failure), bounded by
// ctx, and waits for the cluster's goroutines. Idempotent.
func (c *cluster) close(ctx context.Context) error {
	c.cancel()
	err := c.node.Shutdown(ctx)
	if err != nil {
		_ = c.node.Close()
	}
	c.g.Stop()
	c.g.Wait()
	return err
}

// shutdown stops gossip without a leave, so peers declare this node failed
// after the suspicion timeout, as after a crash. Idempotent.
func (c *cluster) shutdown() {
	c.cancel()
	_ = c.node.Close()
	c.g.Stop()
	c.g.Wait()
}
