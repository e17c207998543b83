package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
	"github.com/syncmq/syncmq/coord"
	"go.uber.org/zap"
)

func newDemoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show the quorum gate, a repair, a late joiner and a reported loss, in one process",
		Long: `demo runs a publisher and --subscribers subscribers in this process, on
127.0.0.1 with ports the OS chooses and real sockets, and shows in four
stages what syncmq adds to PUB-SUB, with the numbers of each:

  (a) the quorum gate: nothing is published before the last subscriber joined;
  (b) a subscriber that stalls is cut as a slow consumer and repairs its gap
      over the recovery channel;
  (c) a late joiner starting at the earliest record catches up from history;
  (d) what the publisher no longer retains is reported lost, explicitly.

It exits 0 when every stage behaved as expected, 1 with the reason
otherwise. It logs nothing unless --log-level says so.`,
		Args:          cli.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := settings.DefaultDemo()
			if _, err := cli.Load(cmd, settings.PublisherPrefix, &s); err != nil {
				return err
			}
			if s.Subscribers < 2 || s.Subscribers > 16 {
				return cli.Usagef("subscribers: %d is not in 2..16", s.Subscribers)
			}
			if s.Count < demoBatch || s.Count > demoRetention/2 {
				return cli.Usagef("count: %d is not in %d..%d", s.Count, demoBatch, demoRetention/2)
			}
			lg := zap.NewNop()
			if s.LogLevel != "off" {
				var err error
				if lg, err = (cli.Common{LogLevel: cli.LogLevel(s.LogLevel), LogFormat: s.LogFormat}).Logger(os.Stderr); err != nil {
					return err
				}
				defer func() { _ = lg.Sync() }()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := runDemo(ctx, cmd.OutOrStdout(), lg, s.Subscribers, s.Count)
			if err != nil && ctx.Err() != nil && cmd.Context().Err() == nil {
				return &cli.ExitError{Code: cli.ExitInterrupted, Err: fmt.Errorf("interrupted: %w", err)}
			}
			return err
		},
	}
	defaults := settings.DefaultDemo()
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	cli.AddFlags(cmd.Flags(), &defaults)
	return cmd
}

// Topics of the stages.
const (
	topicQuorum    = "demo.a" // (a), and the late joiner's (c)
	topicStall     = "demo.b" // (b)
	topicRetention = "demo.d" // (d)
	// stallMarker is a prefix only the stalling subscriber subscribes to,
	// so the publisher's connection events say which connection is its.
	stallMarker = "demo.stall"
)

// Demo parameters. The history keeps demoRetention messages per topic:
// more than stage (b) sends while a subscriber stalls and than stage (c)
// publishes before its late joiner joins (--count), fewer than stage (d)
// publishes (--count more, at least one batch).
const (
	demoRetention = 20_000
	demoBatch     = 100
	demoTimeout   = time.Minute      // the whole demo
	stageWait     = 20 * time.Second // one wait inside a stage
)

// demo is one run: a publisher, the subscribers of its quorum, the late
// joiners, and what was published per topic.
type demo struct {
	ctx       context.Context
	out       io.Writer
	lg        *zap.Logger
	n, count  int
	pub       *coord.Publisher
	subs      []*demoSub // the quorum's
	late      []*demoSub
	published map[string]uint64
	stop      chan struct{} // closed at the end: no Handler stays stalled
	stopOnce  sync.Once

	stallConn atomic.Uint64 // the stalling subscriber's data connection (PeerEvent.Conn + 1)
	stallCut  chan struct{} // closed when the publisher cut that connection as slow
	cutOnce   sync.Once
}

// runDemo runs the four stages and prints their summary to out. It
// returns the first stage that did not behave as expected.
func runDemo(ctx context.Context, out io.Writer, lg *zap.Logger, n, count int) (err error) {
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	d := &demo{ctx: ctx, out: out, lg: lg, n: n, count: count, published: map[string]uint64{},
		stop: make(chan struct{}), stallCut: make(chan struct{})}
	start := time.Now()
	if err := d.startPublisher(); err != nil {
		return err
	}
	defer d.close()
	fmt.Fprintf(out, "syncmq demo: 1 publisher, %d subscribers, %d messages per stage, TCP on 127.0.0.1\n", n, count)
	stages := []struct {
		name string
		run  func() error
	}{
		{"(a) quorum gate", d.quorumGate},
		{"(b) stall and repair", d.stallAndRepair},
		{"(c) late joiner", d.lateJoiner},
		{"(d) retention exceeded", d.retentionExceeded},
	}
	for _, s := range stages {
		fmt.Fprintln(out)
		if err := s.run(); err != nil {
			return fmt.Errorf("stage %s: %w", s.name, err)
		}
	}
	if err := d.end(); err != nil {
		return fmt.Errorf("end: %w", err)
	}
	fmt.Fprintf(out, "\nEND: every subscriber took everything; 4 of 4 stages as expected in %.1fs\n", time.Since(start).Seconds())
	return nil
}

func (d *demo) startPublisher() error {
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	cfg.Expect = d.n
	cfg.History.MaxMessages = demoRetention
	// The history evicts whole batches: small ones make the retention of
	// stage (d) exact to 100 messages.
	cfg.MaxBatchRecords = demoBatch
	// Replays go as fast as loopback allows; the defaults pace them for a
	// network shared with live traffic.
	cfg.RecoveryLimit.HostBytesRate, cfg.RecoveryLimit.HostBytesBurst = 256<<20, 256<<20
	cfg.RecoveryLimit.GlobalBytesRate, cfg.RecoveryLimit.GlobalBytesBurst = 256<<20, 256<<20
	// A subscriber that takes nothing for 100 ms, or falls 8 MiB behind,
	// is cut: stage (b) shows it within a few megabytes.
	cfg.Wire = coord.PubWireConfig{QueueBytes: 1 << 20, MaxQueueBytes: 8 << 20, SlowTimeout: 100 * time.Millisecond, OnEvent: d.onPeerEvent}
	// Stage (b) shows the cut and the repair over the recovery channel:
	// under the default catch-up a stalled subscriber that the kernel's
	// buffers still absorb is fed from the history instead, with nothing
	// to show.
	cfg.SlowPolicy = coord.SlowCut
	cfg.Logger = d.lg
	var err error
	d.pub, err = coord.NewPublisher(cfg)
	return err
}

// onPeerEvent watches the stalling subscriber's data connection: it is
// the one that subscribed to stallMarker.
func (d *demo) onPeerEvent(ev coord.PeerEvent) {
	switch ev.Type {
	case coord.PeerSubscribed:
		if string(ev.Prefix) == stallMarker {
			d.stallConn.Store(ev.Conn + 1)
		}
	case coord.PeerSlow:
		if d.stallConn.Load() == ev.Conn+1 {
			d.cutOnce.Do(func() { close(d.stallCut) })
		}
	}
}

// newSub starts a subscriber of the demo's publisher.
func (d *demo) newSub(name string, cfg coord.SubscriberConfig) (*demoSub, error) {
	ds := newDemoSub(name, d.stop)
	cfg.Connect, cfg.Sync, cfg.ID, cfg.Logger, cfg.Handler = d.pub.Endpoint(), d.pub.SyncEndpoint(), name, d.lg, ds.handle
	var err error
	if ds.sub, err = coord.NewSubscriber(cfg); err != nil {
		return nil, err
	}
	if err := ds.sub.WaitReady(d.ctx); err != nil {
		ds.sub.Close()
		return nil, fmt.Errorf("%s did not join: %w", name, err)
	}
	return ds, nil
}

// publish publishes n payloads on topic.
func (d *demo) publish(topic string, n int, payload []byte) error {
	for range n {
		if _, err := d.pub.Publish(d.ctx, topic, payload); err != nil {
			return err
		}
		d.published[topic]++
	}
	return nil
}

// waitUntil polls cond until it holds, failing with what after stageWait.
func (d *demo) waitUntil(what string, cond func() bool) error {
	deadline := time.Now().Add(stageWait)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, stageWait)
		}
		select {
		case <-d.ctx.Done():
			return fmt.Errorf("%s: %w", what, d.ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// allHave waits until every one of subs has topic up to last.
func (d *demo) allHave(subs []*demoSub, topic string, last uint64) error {
	return d.waitUntil(fmt.Sprintf("subscribers to receive %s up to %d", topic, last), func() bool {
		for _, s := range subs {
			if !s.has(topic, last) {
				return false
			}
		}
		return true
	})
}

// end shuts the publisher down gracefully (END) and waits until every
// subscriber saw END with nothing missing.
func (d *demo) end() error {
	if err := d.pub.Shutdown(d.ctx); err != nil {
		return fmt.Errorf("publisher shutdown: %w", err)
	}
	all := append(append([]*demoSub(nil), d.subs...), d.late...)
	if err := d.waitUntil("every subscriber to see END", func() bool {
		for _, s := range all {
			if !s.hasEnded() {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	for _, s := range all {
		if errs := s.orderErrors(); len(errs) > 0 {
			return errors.New(errs[0])
		}
	}
	return nil
}

// close releases any stalled Handler and stops everything. Idempotent.
func (d *demo) close() {
	d.stopOnce.Do(func() { close(d.stop) })
	for _, s := range append(append([]*demoSub(nil), d.subs...), d.late...) {
		s.sub.Close()
	}
	d.pub.Close()
}
