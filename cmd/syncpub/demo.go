package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
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
		Short: "Run a publisher and subscribers in one process on loopback and summarise",
		Long: `demo starts a publisher and --subscribers subscribers on 127.0.0.1 with real
ZeroMQ sockets, shows the handshake, publishes --count messages, and prints
what every subscriber received. It needs no configuration.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := settings.DefaultDemo()
			if _, err := cli.Load(cmd, settings.PublisherPrefix, &s); err != nil {
				return err
			}
			if s.Subscribers < 1 {
				return cli.Usagef("subscribers: need at least 1")
			}
			lg, err := s.Common.Logger(os.Stderr)
			if err != nil {
				return err
			}
			defer func() { _ = lg.Sync() }()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = runDemo(ctx, lg, s.Subscribers, s.Count)
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

type demoSub struct {
	sub      *coord.Subscriber
	received atomic.Uint64
	inOrder  atomic.Bool
	ended    chan struct{}
	endOnce  sync.Once
}

func runDemo(ctx context.Context, lg *zap.Logger, n, count int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	cfg.Expect = n
	cfg.Logger = lg
	pub, err := coord.NewPublisher(cfg)
	if err != nil {
		return err
	}
	defer pub.Shutdown(context.Background())
	fmt.Printf("publisher %s on %s, sync %s, waiting for %d subscribers\n", pub.ID().Short(), pub.Endpoint(), pub.SyncEndpoint(), n)

	subs := make([]*demoSub, n)
	for i := range subs {
		ds := &demoSub{ended: make(chan struct{})}
		ds.inOrder.Store(true)
		var next uint64 = 1
		ds.sub, err = coord.NewSubscriber(coord.SubscriberConfig{
			Connect: pub.Endpoint(), Sync: pub.SyncEndpoint(), ID: fmt.Sprintf("demo-sub-%d", i+1), Logger: lg,
			Handler: func(ev coord.Event) {
				switch ev.Type {
				case coord.EventMessage:
					if ev.Seq != next {
						ds.inOrder.Store(false)
					}
					next = ev.Seq + 1
					ds.received.Add(1)
				case coord.EventEnd:
					ds.endOnce.Do(func() { close(ds.ended) })
				}
			},
		})
		if err != nil {
			return err
		}
		defer ds.sub.Close()
		subs[i] = ds
	}
	if err := pub.WaitQuorum(ctx); err != nil {
		return err
	}
	fmt.Printf("quorum: %d of %d subscribers proved their data path; publishing %d messages\n", pub.Stats().Joined, n, count)
	start := time.Now()
	for i := 0; i < count; i++ {
		if _, err := pub.Publish(ctx, "update", []byte("Rhubarb")); err != nil {
			return err
		}
	}
	if err := pub.Shutdown(ctx); err != nil {
		return err
	}
	for _, ds := range subs {
		select {
		case <-ds.ended:
		case <-ctx.Done():
			return fmt.Errorf("subscribers did not see END: %w", ctx.Err())
		}
	}
	el := time.Since(start)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "subscriber\treceived\tlost\tgaps\tduplicates\tin order")
	failed := false
	for _, ds := range subs {
		st := ds.sub.Stats()
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%v\n", ds.sub.ID(), ds.received.Load(), st.Lost, st.Gaps, st.Duplicates, ds.inOrder.Load())
		failed = failed || st.Lost > 0 || ds.received.Load() != uint64(count) || !ds.inOrder.Load()
	}
	tw.Flush()
	fmt.Printf("%d messages x %d subscribers in %v (%.0f deliveries/s)\n", count, n, el.Round(time.Millisecond), float64(count*n)/el.Seconds())
	if failed {
		return fmt.Errorf("a subscriber missed messages")
	}
	return nil
}
