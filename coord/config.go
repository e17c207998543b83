package coord

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/syncmq/syncmq/journal"
	"github.com/syncmq/syncmq/proto/handshake"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// QuorumPolicy says what happens when QuorumTimeout passes without quorum.
type QuorumPolicy int

const (
	// QuorumFail makes WaitQuorum and Publish return a *QuorumError.
	QuorumFail QuorumPolicy = iota
	// QuorumProceed starts publishing with the subscribers present.
	QuorumProceed
)

// ParseQuorumPolicy parses "fail" or "proceed".
func ParseQuorumPolicy(s string) (QuorumPolicy, error) {
	switch s {
	case "fail", "":
		return QuorumFail, nil
	case "proceed":
		return QuorumProceed, nil
	}
	return 0, fmt.Errorf("coord: quorum policy %q: want fail or proceed", s)
}

func (p QuorumPolicy) String() string {
	if p == QuorumProceed {
		return "proceed"
	}
	return "fail"
}

// LostPolicy says what Publish does when a membership quorum reached
// before is lost (a counted subscriber failed or left).
type LostPolicy int

const (
	// LostContinue keeps publishing; the loss is logged and visible in
	// Stats. Subscribers that come back repair their gaps.
	LostContinue LostPolicy = iota
	// LostPause makes Publish block until the quorum is back or its ctx
	// ends.
	LostPause
)

// ParseLostPolicy parses "continue" or "pause".
func ParseLostPolicy(s string) (LostPolicy, error) {
	switch s {
	case "continue", "":
		return LostContinue, nil
	case "pause":
		return LostPause, nil
	}
	return 0, fmt.Errorf("coord: quorum-lost policy %q: want continue or pause", s)
}

func (p LostPolicy) String() string {
	if p == LostPause {
		return "pause"
	}
	return "continue"
}

// SlowPolicy says what a publisher does with a subscriber that reads
// slower than it publishes.
type SlowPolicy int

const (
	// SlowCatchUp (the default): a joined subscriber whose send queue
	// passes twice the wire's QueueBytes stops getting the live stream
	// and is fed from the retained history (memory or journal), in
	// order, on its data connection, at the pace it reads; once it has
	// caught up it gets the live stream again. The publisher never waits
	// for it while another joined subscriber is on the live stream (when
	// all are catching up, it waits for the first to catch up, as long as
	// one of them reads within the wire's SlowTimeout), and while it is fed from the history the wire's SlowTimeout
	// does not cut it (a reader that pauses keeps its place). Only what
	// the history no longer holds when its cursor gets there is a gap,
	// which it repairs or reports. Without a history (recovery off, or
	// History.MaxMessages 0 without a journal) it is SlowCut: a history
	// that holds nothing cannot feed a subscriber catching up, and a READY
	// that asks for history is not granted it on the data connection.
	SlowCatchUp SlowPolicy = iota
	// SlowWait: lockstep. The publisher waits while any joined
	// subscriber's queue is above QueueBytes: the slowest subscriber sets
	// everyone's pace. One that stops reading is cut after the wire's
	// SlowTimeout.
	SlowWait
	// SlowCut: as NATS core, the publisher never waits, and a subscriber
	// whose queue would pass MaxQueueBytes is disconnected as a slow
	// consumer; it repairs over the recovery channel when it comes back.
	SlowCut
)

// ParseSlowPolicy parses "catch-up", "wait" or "cut".
func ParseSlowPolicy(s string) (SlowPolicy, error) {
	switch s {
	case "catch-up", "":
		return SlowCatchUp, nil
	case "wait":
		return SlowWait, nil
	case "cut":
		return SlowCut, nil
	}
	return 0, fmt.Errorf("coord: slow policy %q: want catch-up, wait or cut", s)
}

func (p SlowPolicy) String() string {
	switch p {
	case SlowWait:
		return "wait"
	case SlowCut:
		return "cut"
	}
	return "catch-up"
}

// PublisherConfig configures a Publisher. Use DefaultPublisherConfig and
// change what you need.
type PublisherConfig struct {
	// Bind is the PUB endpoint, e.g. "tcp://*:5561"; port 0 lets the OS choose.
	Bind string
	// SyncBind is the handshake (REP side) endpoint, e.g. "tcp://*:5562".
	SyncBind string
	// RecoveryBind is the recovery (ROUTER side) endpoint that replays
	// retained history, e.g. "tcp://*:5563". Empty disables recovery.
	RecoveryBind string
	// History bounds the batches retained in memory and replayed over the
	// recovery channel, when DataDir is empty. Zero value:
	// recovery.DefaultHistoryConfig().
	History recovery.HistoryConfig
	// DataDir keeps the history on disk instead, in a journal (package
	// journal, docs/durability.md): every batch is written there before
	// it is handed to the socket, and the recovery endpoint serves this
	// epoch and earlier ones from it, across restarts and crashes. The
	// directory belongs to one publisher id: with ID zero the directory's
	// is used, and with Epoch zero a new epoch above every earlier one.
	// Empty means memory only.
	DataDir string
	// Journal configures the journal in DataDir (fsync policy, segment
	// size, retention, disk budget); Publisher and Logger are set by
	// coord. Zero value: journal.DefaultConfig().
	Journal journal.Config
	// RecoveryLimit rate-limits recovery requests per subscriber host.
	// Zero value: recovery.DefaultLimiterConfig().
	RecoveryLimit recovery.LimiterConfig
	// MaxReplayRange bounds the sequences one recovery request may ask
	// for; larger requests get a "range too large" error. Default 65536.
	MaxReplayRange uint64
	// RepairWindow is how long, after END, Shutdown waits for a
	// subscriber that joined, has not said BYE and has no data
	// connection (from END, or from when its connection went away if
	// later) before it gives it up as unconfirmed. A subscriber that is
	// connected is waited for as long as Shutdown's ctx allows, and so is
	// one whose connection was cut as a slow consumer: it learns of the
	// cut only once it has read what its socket held, and comes back
	// then. The ACK announces it (repair_window_ms). Default
	// DefaultRepairWindow; at least MinRepairWindow.
	RepairWindow time.Duration
	// SlowPolicy says what happens to a subscriber that reads slower than
	// the publisher publishes (SlowCatchUp by default). It sets the wire's
	// Pace and BehindBytes: Wire.Pace is ignored.
	SlowPolicy SlowPolicy
	// LingerAfterEnd keeps the publisher serving after END for at least
	// this long, also when every subscriber that joined said BYE or none
	// joined: a subscriber that comes later joins, is fed the history on
	// its data connection and is sent END, and the recovery endpoint
	// answers. Zero: Shutdown returns once nothing is waited for.
	LingerAfterEnd time.Duration
	// ID identifies the publisher; zero means random (with DataDir, the
	// directory's).
	ID envelope.ID
	// Epoch distinguishes incarnations; zero means the start time in Unix
	// microseconds, which grows across restarts and stays below 2^53 so
	// JSON carries it exactly (with DataDir, also above every epoch the
	// journal has seen, which keeps a journal of protocol 1.0's
	// nanosecond epochs in that range). Subscribers order epochs with
	// envelope.EpochAfter.
	Epoch uint64
	// Expect is the quorum: distinct subscribers that must complete the
	// handshake before anything is published. Zero publishes at once.
	Expect int
	// QuorumTimeout bounds the wait for quorum; zero waits until the
	// caller's context ends.
	QuorumTimeout time.Duration
	// QuorumPolicy applies when QuorumTimeout passes.
	QuorumPolicy QuorumPolicy
	// Gossip joins a membership cluster; nil means none. The publisher
	// then advertises its endpoints and Topics, and Quorum can count live
	// subscriber members.
	Gossip *GossipConfig
	// Topics are the topic prefixes this publisher announces to the
	// cluster: it publishes only topics that start with one of them
	// (Publish refuses others with ErrBadTopic), and subscribers whose
	// prefixes overlap them connect and count toward Quorum. Empty means
	// every topic.
	Topics []string
	// Quorum is a membership quorum (all, majority or a count of live
	// subscriber members); it needs Gossip and excludes Expect. The zero
	// value means the static Expect.
	Quorum QuorumRule
	// Settle is how long after start a membership quorum is not judged,
	// so a starting cluster has time to gossip its members. Default 2 s.
	Settle time.Duration
	// QuorumLost says what Publish does when a membership quorum reached
	// before is lost: continue (the default) or pause until it is back.
	QuorumLost LostPolicy
	// HelloInterval is how long after the first HELLO to a new data
	// connection (sent the moment it subscribes to the control topic) the
	// next is sent if it has not joined yet; the interval then doubles up
	// to HeartbeatInterval. Default 50 ms; at least MinInterval.
	HelloInterval time.Duration
	// HeartbeatInterval is the period of heartbeats that carry the last
	// sequence of each topic, so subscribers notice tail loss. Default 1 s;
	// at least MinInterval.
	HeartbeatInterval time.Duration
	// MaxBatchBytes bounds one batched message's payload. Default 64 KiB.
	// Batching is natural: the sender takes whatever was published since
	// its last send, so an idle publisher sends each record at once and a
	// busy one sends full batches.
	MaxBatchBytes int
	// MaxBatchRecords bounds the records of one message; 1 disables
	// batching. Zero means envelope.MaxRecords.
	MaxBatchRecords int
	// Linger makes the sender wait this long after being woken before it
	// takes a batch, trading latency for fuller batches. Zero: no wait.
	Linger time.Duration
	// MaxPending bounds the bytes accepted by Publish but not yet handed to
	// the socket; Publish blocks beyond it. Default 8 MiB.
	MaxPending int
	// MaxPayload bounds one record. Default 1 MiB.
	MaxPayload int
	// MaxTopics bounds the topics published on; Publish refuses a new
	// topic beyond it with ErrTooManyTopics. Default 16,384, at most
	// 60,000 (END lists every topic in one message).
	MaxTopics int
	// MaxSubscribers bounds the distinct subscriber ids the publisher
	// remembers; a READY from one more is refused with code "full". An
	// id whose data connection goes away before the start is forgotten
	// and gives its place up (it joins again as new). Default 4096.
	MaxSubscribers int
	// MaxSubscribersPerIP bounds, on tcp://, the ids remembered whose
	// data connection came from one source address: a READY for a new
	// id beyond it is refused with code "full". On tcp:// anyone may
	// pick any id, so without it one host could take every
	// MaxSubscribers place; with TLS the certificate is the id and this
	// does not apply. Default 256, at most MaxSubscribers.
	MaxSubscribersPerIP int
	// TLS, when set, secures every endpoint of the publisher: Bind,
	// SyncBind and RecoveryBind must then all be tls:// (and a tls://
	// endpoint needs it). Subscribers must present a certificate its CA
	// pool verifies, and a subscriber id must be the identity that
	// certificate names (CertIdentity) on the sync connection and on the
	// data connection whose nonce its READY quotes, so nobody joins,
	// counts or says BYE under another's name. Replacing its certificate
	// (TLS.Reload, TLS.Set) keeps established connections. Nil means
	// tcp://.
	TLS *TLS
	// Allow, with TLS, lists the identities that may subscribe, count
	// toward the quorum and fetch history: data connections of others
	// are closed after the TLS handshake, and their READY, BYE and FETCH
	// are refused (code forbidden). Empty means every certificate the CA
	// pool verifies.
	Allow []string
	// JoinTimeout closes a data connection that has not proved a
	// subscriber through the sync handshake this long after it connected,
	// so idle strangers cannot hold connections. Default 30 s; at least
	// MinJoinTimeout; negative disables it.
	JoinTimeout time.Duration
	// Wire tunes the data endpoint: queues, the slow-consumer timeout,
	// limits on connections and subscriptions. Zero value:
	// DefaultPubWireConfig().
	Wire PubWireConfig
	// Logger receives lifecycle events; nil means none.
	Logger *zap.Logger
}

// DefaultPublisherConfig returns a configuration that binds the zguide ports.
func DefaultPublisherConfig() PublisherConfig {
	return PublisherConfig{
		Bind:                "tcp://*:5561",
		SyncBind:            "tcp://*:5562",
		RecoveryBind:        "tcp://*:5563",
		History:             recovery.DefaultHistoryConfig(),
		RecoveryLimit:       recovery.DefaultLimiterConfig(),
		MaxReplayRange:      65536,
		RepairWindow:        DefaultRepairWindow,
		HelloInterval:       50 * time.Millisecond,
		HeartbeatInterval:   time.Second,
		MaxBatchBytes:       64 << 10,
		MaxPending:          8 << 20,
		MaxPayload:          1 << 20,
		MaxTopics:           16_384,
		MaxSubscribers:      4096,
		MaxSubscribersPerIP: 256,
		JoinTimeout:         30 * time.Second,
	}
}

// DefaultRepairWindow is PublisherConfig.RepairWindow's default: long
// enough for a subscriber cut as a slow consumer, or by a short network
// fault, to reconnect and ask for its tail. A connected subscriber is
// waited for regardless.
const DefaultRepairWindow = 5 * time.Second

// Floors of PublisherConfig's durations; zero means the default. A
// shorter repair window leaves no time to ask for a lost tail, intervals
// below MinInterval make HELLOs or heartbeats cost CPU for nothing, and a
// join timeout below MinJoinTimeout closes subscribers' connections
// before their handshake could complete.
const (
	MinRepairWindow = 100 * time.Millisecond
	MinInterval     = 10 * time.Millisecond
	MinJoinTimeout  = 100 * time.Millisecond
)

// maxTopicsLimit keeps END's table, which lists every topic, within one
// message: 60,000 entries of at most 264 bytes fit in 16 MiB.
const maxTopicsLimit = 60_000

// Validate reports every invalid field, one per line.
func (c *PublisherConfig) Validate() error {
	var errs []error
	if _, err := wire.SplitEndpoint(c.Bind); err != nil {
		errs = append(errs, fmt.Errorf("bind: %w", err))
	}
	if _, err := wire.SplitEndpoint(c.SyncBind); err != nil {
		errs = append(errs, fmt.Errorf("sync-bind: %w", err))
	}
	if c.RecoveryBind != "" {
		if _, err := wire.SplitEndpoint(c.RecoveryBind); err != nil {
			errs = append(errs, fmt.Errorf("recovery-bind: %w", err))
		}
		if c.History != (recovery.HistoryConfig{}) {
			if err := c.History.Validate(); err != nil {
				errs = append(errs, prefixed("history", err)...)
			}
		}
		if c.RecoveryLimit != (recovery.LimiterConfig{}) {
			if err := c.RecoveryLimit.Validate(); err != nil {
				errs = append(errs, prefixed("recovery-limit", err)...)
			}
		}
	}
	errs = append(errs, c.validateTLS()...)
	if err := c.TLS.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Expect < 0 {
		errs = append(errs, fmt.Errorf("expect: %d is negative", c.Expect))
	}
	if c.Quorum.membership() {
		if c.Gossip == nil {
			errs = append(errs, fmt.Errorf("quorum %s: counts cluster members and needs gossip (join a cluster)", c.Quorum))
		}
		if c.Expect != 0 {
			errs = append(errs, fmt.Errorf("quorum %s and expect %d: choose one", c.Quorum, c.Expect))
		}
		if c.Quorum.Kind == QuorumCount && c.Quorum.N < 1 {
			errs = append(errs, fmt.Errorf("quorum: count %d must be at least 1", c.Quorum.N))
		}
	} else if c.Quorum.N != 0 {
		errs = append(errs, fmt.Errorf("quorum: the static quorum is set with Expect"))
	}
	if c.Settle < 0 {
		errs = append(errs, fmt.Errorf("settle: %v is negative", c.Settle))
	}
	if c.Gossip != nil {
		if err := c.Gossip.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	seen := make(map[string]bool, len(c.Topics))
	for _, t := range c.Topics {
		switch {
		case t == "" || t[0] == 0:
			errs = append(errs, fmt.Errorf("topics: %q is empty or starts with the reserved zero byte", t))
		case seen[t]:
			errs = append(errs, fmt.Errorf("topics: %q is listed twice", t))
		}
		seen[t] = true
	}
	if c.MaxBatchRecords < 0 || c.Linger < 0 {
		errs = append(errs, fmt.Errorf("max-batch-records and linger must not be negative"))
	}
	if c.QuorumTimeout < 0 {
		errs = append(errs, fmt.Errorf("quorum-timeout: %v is negative", c.QuorumTimeout))
	}
	if c.SlowPolicy < SlowCatchUp || c.SlowPolicy > SlowCut {
		errs = append(errs, fmt.Errorf("slow-policy: %d is not a policy", c.SlowPolicy))
	}
	if c.LingerAfterEnd < 0 {
		errs = append(errs, fmt.Errorf("linger-after-end: %v is negative", c.LingerAfterEnd))
	}
	errs = append(errs,
		atLeast("repair-window", c.RepairWindow, MinRepairWindow, false),
		atLeast("hello-interval", c.HelloInterval, MinInterval, false),
		atLeast("heartbeat", c.HeartbeatInterval, MinInterval, false),
		atLeast("join-timeout", c.JoinTimeout, MinJoinTimeout, true))
	if c.MaxBatchBytes < 0 || c.MaxPending < 0 || c.MaxPayload < 0 {
		errs = append(errs, fmt.Errorf("max-batch-bytes, max-pending and max-payload must not be negative"))
	}
	if c.DataDir != "" {
		if err := c.Journal.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("journal: %w", err))
		}
	}
	if c.MaxTopics < 0 || c.MaxTopics > maxTopicsLimit {
		errs = append(errs, fmt.Errorf("max-topics: %d is not in 0..%d", c.MaxTopics, maxTopicsLimit))
	}
	if c.MaxSubscribers < 0 {
		errs = append(errs, fmt.Errorf("max-subscribers: %d is negative", c.MaxSubscribers))
	}
	if c.MaxSubscribersPerIP < 0 {
		errs = append(errs, fmt.Errorf("max-subscribers-per-ip: %d is negative", c.MaxSubscribersPerIP))
	}
	if err := c.Wire.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxPayload > envelope.DefaultLimits.MaxPayload-4 {
		errs = append(errs, fmt.Errorf("max-payload: %d exceeds %d", c.MaxPayload, envelope.DefaultLimits.MaxPayload-4))
	}
	return errors.Join(errs...)
}

// atLeast reports a duration below its floor. Zero means the default and
// is fine; a negative value is an error unless negativeOff says it turns
// the feature off.
func atLeast(name string, d, least time.Duration, negativeOff bool) error {
	switch {
	case d < 0 && !negativeOff:
		return fmt.Errorf("%s: %v is negative", name, d)
	case d > 0 && d < least:
		return fmt.Errorf("%s: %v is below %v", name, d, least)
	}
	return nil
}

// prefixed names the part of the configuration each of err's problems
// (a library's joined errors) comes from.
func prefixed(name string, err error) []error {
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fmt.Errorf("%s: %w", name, e))
		}
		return out
	}
	return []error{fmt.Errorf("%s: %w", name, err)}
}

// validateTLS checks that TLS secures every endpoint or none, and the
// allow-list.
func (c *PublisherConfig) validateTLS() []error {
	var errs []error
	for _, ep := range []struct{ name, endpoint string }{{"bind", c.Bind}, {"sync-bind", c.SyncBind}, {"recovery-bind", c.RecoveryBind}} {
		switch {
		case ep.endpoint == "":
		case c.TLS != nil && wire.IsLocal(ep.endpoint):
			errs = append(errs, fmt.Errorf("%s: %q: ipc:// and inproc:// carry no TLS; with TLS every endpoint is tls://", ep.name, ep.endpoint))
		case c.TLS != nil && !wire.IsTLS(ep.endpoint):
			errs = append(errs, fmt.Errorf("%s: %q is not tls://; with TLS every endpoint is", ep.name, ep.endpoint))
		case c.TLS == nil && wire.IsTLS(ep.endpoint):
			errs = append(errs, fmt.Errorf("%s: %q needs TLS: a certificate, its key and a CA", ep.name, ep.endpoint))
		}
	}
	if len(c.Allow) > 0 && c.TLS == nil {
		errs = append(errs, errors.New("allow: needs TLS: identities come from client certificates"))
	}
	for _, id := range c.Allow {
		if err := handshake.CheckSubscriberID(id); err != nil {
			errs = append(errs, fmt.Errorf("allow: %q: %w", id, err))
		}
	}
	return errs
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	d := DefaultPublisherConfig()
	if c.HelloInterval <= 0 {
		c.HelloInterval = d.HelloInterval
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.MaxPending <= 0 {
		c.MaxPending = d.MaxPending
	}
	if c.History == (recovery.HistoryConfig{}) {
		c.History = d.History
	}
	if c.RecoveryLimit == (recovery.LimiterConfig{}) {
		c.RecoveryLimit = d.RecoveryLimit
	}
	if c.MaxReplayRange == 0 {
		c.MaxReplayRange = d.MaxReplayRange
	}
	if c.RepairWindow <= 0 {
		c.RepairWindow = d.RepairWindow
	}
	if c.MaxBatchRecords <= 0 || c.MaxBatchRecords > envelope.MaxRecords {
		c.MaxBatchRecords = envelope.MaxRecords
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = d.MaxPayload
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.MaxTopics == 0 {
		c.MaxTopics = d.MaxTopics
	}
	if c.MaxSubscribers == 0 {
		c.MaxSubscribers = d.MaxSubscribers
	}
	if c.MaxSubscribersPerIP == 0 {
		c.MaxSubscribersPerIP = d.MaxSubscribersPerIP
	}
	c.MaxSubscribersPerIP = min(c.MaxSubscribersPerIP, c.MaxSubscribers)
	switch {
	case c.JoinTimeout == 0:
		c.JoinTimeout = d.JoinTimeout
	case c.JoinTimeout < 0:
		c.JoinTimeout = 0 // the core reads 0 as off
	}
	if !c.Quorum.membership() {
		c.Quorum = QuorumRule{Kind: QuorumStatic, N: c.Expect}
	}
	if c.ID == (envelope.ID{}) && c.DataDir == "" {
		c.ID = envelope.NewID()
	}
	if c.Epoch == 0 && c.DataDir == "" {
		c.Epoch = newEpoch()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Endpoints are the endpoints of one publisher.
type Endpoints struct {
	// Pub is the PUB endpoint, e.g. "tcp://host:5561".
	Pub string
	// Sync is the handshake endpoint, e.g. "tcp://host:5562".
	Sync string
	// Recovery is the recovery endpoint; empty means the one the ACK
	// names, with a wildcard host replaced by Pub's host.
	Recovery string
}

// validate checks the endpoints' syntax, and that a tls:// one has t.
func (e Endpoints) validate(t *TLS) error {
	var errs []error
	for _, ep := range []struct{ name, endpoint string }{{"connect", e.Pub}, {"sync", e.Sync}, {"recovery", e.Recovery}} {
		if ep.endpoint == "" && ep.name == "recovery" {
			continue
		}
		if err := wire.CheckDialEndpoint(ep.endpoint); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep.name, err))
		} else if t == nil && wire.IsTLS(ep.endpoint) {
			errs = append(errs, fmt.Errorf("%s: %q needs TLS: a certificate, its key and a CA", ep.name, ep.endpoint))
		} else if t != nil && wire.IsLocal(ep.endpoint) {
			errs = append(errs, fmt.Errorf("%s: %q: ipc:// and inproc:// carry no TLS; connect without a certificate", ep.name, ep.endpoint))
		}
	}
	return errors.Join(errs...)
}

// DefaultIdleTimeout is how long a subscriber waits for anything (data or
// a heartbeat) from a publisher before it drops the connection and
// reconnects. Publishers send heartbeats every second by default.
const DefaultIdleTimeout = 10 * time.Second

// DefaultPublisherTimeout is how long a subscriber hears nothing from a
// joined publisher before it reports it gone.
const DefaultPublisherTimeout = 15 * time.Second

// DefaultConnectTimeout is how long a subscriber waits for its first
// publisher to join before its job ends as unreachable.
const DefaultConnectTimeout = 30 * time.Second

// Floors of SubscriberConfig's durations; zero means the default. A
// READY needs a round trip to the publisher, a publisher is not gone
// before it missed a heartbeat, and a first join needs a connection, a
// HELLO and a READY.
const (
	MinHandshakeTimeout = 100 * time.Millisecond
	MinPublisherTimeout = 100 * time.Millisecond
	MinConnectTimeout   = 100 * time.Millisecond
)

// Start positions for a late joiner.
const (
	// StartAtJoin starts each topic after the sequence the ACK names:
	// what was published before the join is not delivered.
	StartAtJoin = "join"
	// StartAtEarliest asks the recovery channel for everything before the
	// join that the publisher still retains; what it no longer holds is
	// reported as a before-join loss.
	StartAtEarliest = "earliest"
)

// SubscriberConfig configures a Subscriber. Use DefaultSubscriberConfig
// and set the endpoints and the Handler.
type SubscriberConfig struct {
	// Connect, Sync and Recovery name one publisher statically (the
	// zguide setup). Leave them empty when publishers are added with
	// AddPublisher, e.g. from membership discovery.
	Connect, Sync, Recovery string
	// ID names the subscriber in the quorum; a subscriber that reconnects
	// with the same ID is not counted twice. Empty means random.
	ID string
	// Subscribe lists topic prefixes; empty means every topic.
	Subscribe []string
	// StartAt is StartAtJoin (default), StartAtEarliest, or a sequence
	// number in decimal: every topic starts there (earlier sequences the
	// publisher still retains are replayed first; what it no longer holds
	// is reported as a before-join loss). With StateDir, a checkpoint
	// takes precedence.
	StartAt string
	// StateDir keeps this subscriber's checkpoints (the last sequence
	// delivered per publisher, epoch and topic, written after the Handler
	// returned) so that a restart resumes where it stopped: delivery is at
	// least once, repeating at most one envelope per topic after a crash.
	// Empty means no state: a restarted subscriber starts where the
	// publisher says its id first joined (Ack.Resume), or at its join.
	StateDir string
	// BeforeCheckpoint, with StateDir, is called before checkpoints are
	// written, after the Handler calls they cover: a Handler that buffers
	// what it was handed (an output writer) makes it durable here, so a
	// crash after the checkpoint loses nothing. An error skips that
	// checkpoint (the records are delivered again after a restart). Called
	// from the Handler's goroutine.
	BeforeCheckpoint func() error
	// stateFS is the file system StateDir is on; nil means the real one.
	// A simulation in this package puts StateDir on a simulated disk.
	stateFS journal.FS
	// HandshakeTimeout bounds one READY attempt. Default 1 s; at least
	// MinHandshakeTimeout.
	HandshakeTimeout time.Duration
	// HandshakeAttempts is how many READY attempts one HELLO triggers before
	// waiting for the next HELLO. Default 3.
	HandshakeAttempts int
	// MaxHeld bounds the messages held per publisher while the handshake
	// is in flight. Default 65536.
	MaxHeld int
	// Stream configures gap repair per (publisher, topic). Zero value:
	// recovery.DefaultStreamConfig().
	Stream recovery.StreamConfig
	// Handler receives every event, in order, from one goroutine.
	// Event.Payload is valid only during the call: copy it to keep it
	// (records held during a repair live in reused buffers). A slow handler
	// pushes back on the publisher and eventually makes this subscriber a
	// slow consumer, whose gap is then repaired. Required.
	Handler func(Event)
	// Wire tunes the data connections (reconnect backoff, receive queue,
	// idle timeout). A zero Wire.IdleTimeout means DefaultIdleTimeout;
	// negative disables it.
	Wire SubWireConfig
	// ConnectTimeout bounds the wait for the first publisher to join
	// (complete the handshake; its quorum may still be pending). When it
	// passes with none joined, the job ends: Done is closed, and Err and
	// WaitReady return a *JobError with OutcomeUnreachable whose Reason
	// says how far each publisher got. The Subscriber keeps trying until
	// Close, but the outcome stays. Default DefaultConnectTimeout (30 s);
	// at least MinConnectTimeout; negative waits until Close (for a
	// subscriber that may start long before any publisher).
	ConnectTimeout time.Duration
	// PublisherTimeout ends a joined publisher from which nothing at all
	// (data, heartbeat, HELLO) arrived for this long before its END: its
	// streams report the unknown rest lost (cause publisher-gone) and an
	// EventEnd with Cause EndPublisherGone follows. After END, when no
	// repair brought a record for this long, the gaps left are given up
	// together (cause timeout) and the plain EventEnd follows,
	// rather than each after its own RepairTimeout. It must exceed the
	// publisher's heartbeat interval. Default 15 s; at least
	// MinPublisherTimeout; negative disables it.
	PublisherTimeout time.Duration
	// TLS is this subscriber's certificate and the CA pool that verifies
	// publishers, for tls:// endpoints, which need it; tcp:// endpoints
	// do not use it. With TLS, ID defaults to the identity the
	// certificate names (CertIdentity), and another ID is refused: a
	// publisher with TLS accepts a READY only under that identity.
	TLS *TLS
	// Gossip joins a membership cluster; nil means none. The subscriber
	// then connects to every publisher member whose topics overlap
	// Subscribe, including later ones, and disconnects from those that
	// leave or fail. Connect/Sync may still name one publisher statically.
	Gossip *GossipConfig
	// Logger receives lifecycle events; nil means none.
	Logger *zap.Logger

	// dataOnly makes the READY accept no form beyond protocol 1.0, so the
	// publisher sends only DATA messages: tests mix such subscribers with
	// others to check both forms side by side.
	dataOnly bool
}

// DefaultSubscriberConfig returns the configuration zero fields default
// to, with every duration and bound spelled out and no publisher: set
// Connect and Sync (or Gossip) and a Handler.
func DefaultSubscriberConfig() SubscriberConfig {
	return SubscriberConfig{
		StartAt:           StartAtJoin,
		HandshakeTimeout:  time.Second,
		HandshakeAttempts: 3,
		MaxHeld:           65536,
		Stream:            recovery.DefaultStreamConfig(),
		Wire:              SubWireConfig{IdleTimeout: DefaultIdleTimeout},
		PublisherTimeout:  DefaultPublisherTimeout,
		ConnectTimeout:    DefaultConnectTimeout,
	}
}

// Validate reports every invalid field.
func (c *SubscriberConfig) Validate() error {
	var errs []error
	if c.Gossip != nil {
		if err := c.Gossip.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Connect != "" || c.Sync != "" || c.Recovery != "" {
		if err := (Endpoints{Pub: c.Connect, Sync: c.Sync, Recovery: c.Recovery}).validate(c.TLS); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ID != "" {
		if err := handshake.CheckSubscriberID(c.ID); err != nil {
			errs = append(errs, fmt.Errorf("id: %w", err))
		}
	}
	if err := c.TLS.validate(); err != nil {
		errs = append(errs, err)
	} else if c.TLS != nil {
		id := c.TLS.Identity()
		if err := handshake.CheckSubscriberID(id); err != nil {
			errs = append(errs, fmt.Errorf("tls: the certificate's identity %q cannot be a subscriber id: %w", id, err))
		} else if c.ID != "" && c.ID != id {
			errs = append(errs, fmt.Errorf("id: %q is not %q, the identity of the TLS certificate; a publisher with TLS would refuse it", c.ID, id))
		}
	}
	for _, s := range c.Subscribe {
		if len(s) > 0 && s[0] == 0 {
			errs = append(errs, fmt.Errorf("subscribe: %q starts with the reserved zero byte", s))
		}
	}
	switch c.StartAt {
	case "", StartAtJoin, StartAtEarliest:
	default:
		if n, err := strconv.ParseUint(c.StartAt, 10, 64); err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("start-at: %q is not join, earliest or a sequence number of at least 1", c.StartAt))
		}
	}
	if c.Stream != (recovery.StreamConfig{}) {
		if err := c.Stream.Validate(); err != nil {
			errs = append(errs, prefixed("stream", err)...)
		}
	}
	errs = append(errs,
		atLeast("handshake-timeout", c.HandshakeTimeout, MinHandshakeTimeout, false),
		atLeast("publisher-timeout", c.PublisherTimeout, MinPublisherTimeout, true),
		atLeast("connect-timeout", c.ConnectTimeout, MinConnectTimeout, true))
	if c.HandshakeAttempts < 0 || c.MaxHeld < 0 {
		errs = append(errs, errors.New("handshake-attempts and max-held must not be negative"))
	}
	if err := c.Wire.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("handler: required"))
	}
	return errors.Join(errs...)
}

func (c SubscriberConfig) withDefaults() SubscriberConfig {
	d := DefaultSubscriberConfig()
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.Wire.IdleTimeout == 0 {
		c.Wire.IdleTimeout = d.Wire.IdleTimeout
	}
	switch {
	case c.PublisherTimeout == 0:
		c.PublisherTimeout = d.PublisherTimeout
	case c.PublisherTimeout < 0:
		c.PublisherTimeout = 0 // onTick reads 0 as off
	}
	switch {
	case c.ConnectTimeout == 0:
		c.ConnectTimeout = d.ConnectTimeout
	case c.ConnectTimeout < 0:
		c.ConnectTimeout = 0 // checkConnectTimeout reads 0 as off
	}
	if c.HandshakeAttempts <= 0 {
		c.HandshakeAttempts = d.HandshakeAttempts
	}
	if c.MaxHeld <= 0 {
		c.MaxHeld = d.MaxHeld
	}
	if c.StartAt == "" {
		c.StartAt = d.StartAt
	}
	if c.Stream == (recovery.StreamConfig{}) {
		c.Stream = d.Stream
	}
	if c.ID == "" && c.TLS != nil {
		c.ID = c.TLS.Identity() // the only name a publisher with TLS accepts
	}
	if c.ID == "" && c.Gossip != nil {
		c.ID = c.Gossip.Node.NodeName // one name in the cluster and the quorum
	}
	if c.ID == "" {
		c.ID = "sub-" + envelope.NewID().Short()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}
