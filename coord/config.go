package coord

import (
	"errors"
	"fmt"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
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

// PublisherConfig configures a Publisher. Use DefaultPublisherConfig and
// change what you need.
type PublisherConfig struct {
	// Bind is the PUB endpoint, e.g. "tcp://*:5561"; port 0 lets the OS choose.
	Bind string
	// SyncBind is the handshake (REP side) endpoint, e.g. "tcp://*:5562".
	SyncBind string
	// ID identifies the publisher; zero means random.
	ID envelope.ID
	// Epoch distinguishes incarnations; zero means the start time in Unix
	// nanoseconds, which grows across restarts.
	Epoch uint64
	// Expect is the quorum: distinct subscribers that must complete the
	// handshake before anything is published. Zero publishes at once.
	Expect int
	// QuorumTimeout bounds the wait for quorum; zero waits until the
	// caller's context ends.
	QuorumTimeout time.Duration
	// QuorumPolicy applies when QuorumTimeout passes.
	QuorumPolicy QuorumPolicy
	// HelloInterval is the period of HELLO probes. Default 50 ms.
	HelloInterval time.Duration
	// HeartbeatInterval is the period of heartbeats that carry the last
	// sequence of each topic, so subscribers notice tail loss. Default 1 s.
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
	// Wire tunes the PUB socket (queues, slow-consumer timeout).
	Wire wire.PubConfig
	// Logger receives lifecycle events; nil means none.
	Logger *zap.Logger
}

// DefaultPublisherConfig returns a configuration that binds the zguide ports.
func DefaultPublisherConfig() PublisherConfig {
	return PublisherConfig{
		Bind:              "tcp://*:5561",
		SyncBind:          "tcp://*:5562",
		HelloInterval:     50 * time.Millisecond,
		HeartbeatInterval: time.Second,
		MaxBatchBytes:     64 << 10,
		MaxPending:        8 << 20,
		MaxPayload:        1 << 20,
	}
}

// Validate reports the first invalid field.
func (c *PublisherConfig) Validate() error {
	var errs []error
	if _, err := wire.SplitEndpoint(c.Bind); err != nil {
		errs = append(errs, fmt.Errorf("bind: %w", err))
	}
	if _, err := wire.SplitEndpoint(c.SyncBind); err != nil {
		errs = append(errs, fmt.Errorf("sync-bind: %w", err))
	}
	if c.Expect < 0 {
		errs = append(errs, fmt.Errorf("expect: %d is negative", c.Expect))
	}
	if c.MaxBatchRecords < 0 || c.Linger < 0 {
		errs = append(errs, fmt.Errorf("max-batch-records and linger must not be negative"))
	}
	if c.QuorumTimeout < 0 {
		errs = append(errs, fmt.Errorf("quorum-timeout: %v is negative", c.QuorumTimeout))
	}
	if c.MaxPayload > envelope.DefaultLimits.MaxPayload-4 {
		errs = append(errs, fmt.Errorf("max-payload: %d exceeds %d", c.MaxPayload, envelope.DefaultLimits.MaxPayload-4))
	}
	return errors.Join(errs...)
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
	if c.MaxBatchRecords <= 0 || c.MaxBatchRecords > envelope.MaxRecords {
		c.MaxBatchRecords = envelope.MaxRecords
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = d.MaxPayload
	}
	if c.ID == (envelope.ID{}) {
		c.ID = envelope.NewID()
	}
	if c.Epoch == 0 {
		c.Epoch = uint64(time.Now().UnixNano())
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// Connect is the publisher's PUB endpoint, e.g. "tcp://localhost:5561".
	Connect string
	// Sync is the publisher's handshake endpoint, e.g. "tcp://localhost:5562".
	Sync string
	// ID names the subscriber in the quorum; a subscriber that reconnects
	// with the same ID is not counted twice. Empty means random.
	ID string
	// Subscribe lists topic prefixes; empty means every topic.
	Subscribe []string
	// HandshakeTimeout bounds one READY attempt. Default 1 s.
	HandshakeTimeout time.Duration
	// HandshakeAttempts is how many READY attempts one HELLO triggers before
	// waiting for the next HELLO. Default 3.
	HandshakeAttempts int
	// MaxHeld bounds the messages held per publisher while the handshake
	// is in flight. Default 65536.
	MaxHeld int
	// Handler receives every event, in order, from one goroutine. It must
	// not retain Message.Payload after returning unless it copies it (the
	// buffer is not reused, so retaining is safe but keeps memory alive).
	// A slow handler pushes back on the publisher and eventually makes this
	// subscriber a slow consumer. Required.
	Handler func(Event)
	// Wire tunes the SUB socket (reconnect backoff, receive queue).
	Wire wire.SubConfig
	// Logger receives lifecycle events; nil means none.
	Logger *zap.Logger
}

// Validate reports every invalid field.
func (c *SubscriberConfig) Validate() error {
	var errs []error
	if _, err := wire.SplitEndpoint(c.Connect); err != nil {
		errs = append(errs, fmt.Errorf("connect: %w", err))
	}
	if _, err := wire.SplitEndpoint(c.Sync); err != nil {
		errs = append(errs, fmt.Errorf("sync: %w", err))
	}
	if c.ID != "" {
		if err := checkSubscriberID(c.ID); err != nil {
			errs = append(errs, fmt.Errorf("id: %w", err))
		}
	}
	for _, s := range c.Subscribe {
		if len(s) > 0 && s[0] == 0 {
			errs = append(errs, fmt.Errorf("subscribe: %q starts with the reserved zero byte", s))
		}
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("handler: required"))
	}
	return errors.Join(errs...)
}

func (c SubscriberConfig) withDefaults() SubscriberConfig {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = time.Second
	}
	if c.HandshakeAttempts <= 0 {
		c.HandshakeAttempts = 3
	}
	if c.MaxHeld <= 0 {
		c.MaxHeld = 65536
	}
	if c.ID == "" {
		c.ID = "sub-" + envelope.NewID().Short()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}
