// Command syncsub is a synchronized subscriber: it connects to a
// publisher, proves its data path through the sync handshake, and prints
// what it receives until the publisher sends END.
//
//	syncsub --connect tcp://localhost:5561 --sync tcp://localhost:5562 --output count
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/proto/envelope"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

func main() {
	cli.Exit("syncsub", newRootCommand().Execute())
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "syncsub",
		Short:         "Subscribe to a synchronized publisher",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o, lg, err := loadOptions(cmd)
			if err != nil {
				return err
			}
			defer lg.Sync()
			if o.checkOnly {
				fmt.Fprintln(cmd.OutOrStdout(), "configuration OK")
				return nil
			}
			return runSubscriber(ctx, o, lg)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	root.AddCommand(newDiagnoseCommand())
	fs := root.Flags()
	fs.String("connect", "tcp://localhost:5561", "publisher's PUB endpoint")
	fs.String("sync", "tcp://localhost:5562", "publisher's sync endpoint")
	fs.String("recovery", "", "publisher's recovery endpoint (default: the one its ACK names, on the --connect host)")
	fs.String("start-at", "join", "join: deliver from the handshake on; earliest: first replay what the publisher still retains")
	fs.Duration("repair-timeout", 5*time.Second, "give a gap up as lost when its repair makes no progress this long")
	fs.Int("max-held-bytes", recovery.DefaultMaxHeldBytes, "bytes of live messages held per topic while a gap is repaired")
	fs.StringArray("subscribe", nil, "topic prefix to subscribe to (repeatable; default: every topic)")
	fs.String("output", "text", "text (topic seq payload), json (one object per line) or count (a summary line at END)")
	fs.String("id", "", "subscriber id in the quorum (default: random)")
	fs.Duration("handshake-timeout", time.Second, "deadline of one READY attempt")
	fs.Bool("exit-on-end", true, "exit when the publisher sends END")
	fs.Bool("check-config", false, "validate the configuration and exit")
	cli.AddGossipFlags(fs)
	cli.AddCommonFlags(fs)
	return root
}

type options struct {
	sub       coord.SubscriberConfig
	output    string
	exitOnEnd bool
	checkOnly bool
}

func loadOptions(cmd *cobra.Command) (options, *zap.Logger, error) {
	var o options
	c, err := cli.Load(cmd, "SYNCSUB")
	if err != nil {
		return o, nil, err
	}
	lg, err := c.Logger()
	if err != nil {
		return o, nil, err
	}
	cfg := coord.SubscriberConfig{Logger: lg}
	var errs []error
	get := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var e error
	cfg.Connect, e = c.String("connect")
	get(e)
	cfg.Sync, e = c.String("sync")
	get(e)
	cfg.Subscribe, e = c.Strings("subscribe")
	get(e)
	cfg.ID, e = c.String("id")
	get(e)
	cfg.Recovery, e = c.String("recovery")
	get(e)
	cfg.StartAt, e = c.Choice("start-at", coord.StartAtJoin, coord.StartAtEarliest)
	get(e)
	cfg.Stream = recovery.DefaultStreamConfig()
	cfg.Stream.RepairTimeout, e = c.Duration("repair-timeout")
	get(e)
	maxHeld, e := c.Int("max-held-bytes")
	get(e)
	cfg.Stream.MaxHeldBytes = int64(maxHeld)
	cfg.HandshakeTimeout, e = c.Duration("handshake-timeout")
	get(e)
	o.output, e = c.Choice("output", "text", "json", "count")
	get(e)
	o.exitOnEnd, e = c.Bool("exit-on-end")
	get(e)
	o.checkOnly, e = c.Bool("check-config")
	get(e)
	get(withGossip(c, &cfg))
	if len(errs) > 0 {
		return o, nil, errs[0]
	}
	cfg.Handler = func(coord.Event) {} // replaced in runSubscriber
	if err := cfg.Validate(); err != nil {
		return o, nil, cli.Usagef("%v", err)
	}
	o.sub = cfg
	return o, lg, nil
}

func runSubscriber(ctx context.Context, o options, lg *zap.Logger) error {
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	p := newPrinter(out, o.output)
	ended := make(chan struct{})
	var progress *progress
	// Progress goes to a terminal on stderr, unless the messages themselves
	// are being printed to that terminal.
	if cli.IsTerminal(os.Stderr) && (o.output == "count" || !cli.IsTerminal(os.Stdout)) {
		progress = newProgress(os.Stderr)
	}
	endedOnce := false
	var current atomic.Pointer[coord.Subscriber] // set once NewSubscriber returned
	endedPubs := make(map[envelope.ID]struct{})
	o.sub.Handler = func(ev coord.Event) {
		if ev.Type == coord.EventEnd {
			endedOnce = true
			endedPubs[ev.Publisher] = struct{}{}
		}
		if !endedOnce { // after END the publisher hangs up: nothing to warn about
			logEvent(lg, ev)
		}
		p.handle(ev)
		if progress != nil {
			progress.update(ev)
		}
		// With several publishers (discovery), exit once each of them ended.
		if ev.Type == coord.EventEnd && o.exitOnEnd && len(endedPubs) >= publishers(current.Load()) {
			select {
			case <-ended:
			default:
				close(ended)
			}
		}
	}
	sub, err := coord.NewSubscriber(o.sub)
	if err != nil {
		return err
	}
	current.Store(sub)
	lg.Info("subscriber started", zap.String("id", sub.ID()), zap.String("connect", o.sub.Connect), zap.String("sync", o.sub.Sync),
		zap.String("gossip", sub.GossipAddr()))
	select {
	case <-ended:
	case <-ctx.Done():
	}
	sub.Close() // the handler is not called after this
	if progress != nil {
		progress.finish()
	}
	st := sub.Stats()
	p.summary(st)
	lg.Info("subscriber finished", zap.Uint64("received", st.Received), zap.Uint64("recovered", st.Recovered), zap.Uint64("lost", st.Lost),
		zap.Uint64("gaps", st.Gaps), zap.Uint64("duplicates", st.Duplicates), zap.Uint64("malformed", st.Malformed),
		zap.Uint64("disconnects", st.Disconnects))
	if st.Lost > 0 {
		out.Flush()
		return fmt.Errorf("%d messages lost in %d gaps; run 'syncsub diagnose' and see docs/runbook.md", st.Lost, st.Gaps)
	}
	return nil
}

// withGossip sets cfg.Gossip from the gossip flags. Publishers are then
// discovered, and --connect/--sync name a static one only when given.
func withGossip(c *cli.Config, cfg *coord.SubscriberConfig) error {
	g, err := c.Gossip()
	if err != nil || g == nil {
		return err
	}
	cfg.Gossip = g
	if !c.IsSet("connect") {
		cfg.Connect = ""
	}
	if !c.IsSet("sync") {
		cfg.Sync = ""
	}
	if g.Node.NodeName == "" {
		g.Node.NodeName = cfg.ID
	}
	return nil
}

// publishers counts the publishers sub is connected to (at least one).
func publishers(sub *coord.Subscriber) int {
	if sub == nil {
		return 1
	}
	return max(1, len(sub.Publishers()))
}

// logEvent logs the events an operator acts on. Losses are logged by the
// library with their range and cause.
func logEvent(lg *zap.Logger, ev coord.Event) {
	switch ev.Type {
	case coord.EventCaughtUp:
		lg.Info("caught up", zap.String("publisher", ev.Publisher.Short()), zap.String("topic", ev.Topic), zap.Uint64("seq", ev.Seq))
	case coord.EventRestart:
		lg.Warn("publisher restarted", zap.String("publisher", ev.Publisher.Short()), zap.Uint64("epoch", ev.Epoch))
	case coord.EventDisconnected:
		lg.Warn("disconnected from publisher", zap.String("endpoint", ev.Endpoint), zap.Error(ev.Err))
	}
}
