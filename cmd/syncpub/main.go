// Command syncpub is a synchronized publisher: it waits until a quorum of
// subscribers has joined through the sync handshake, publishes, then sends
// END and waits for the subscribers to take everything.
//
//	syncpub --bind tcp://*:5561 --sync-bind tcp://*:5562 --expect 10 --count 1000000 --payload Rhubarb
//	syncpub demo
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/proto/envelope"
	"go.uber.org/zap"
)

func main() {
	root := newRootCommand()
	cli.Exit("syncpub", root.Execute())
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "syncpub",
		Short:         "Publish to a quorum of synchronized subscribers",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts, lg, err := loadOptions(cmd)
			if err != nil {
				return err
			}
			defer lg.Sync()
			if opts.checkOnly {
				fmt.Fprintln(cmd.OutOrStdout(), "configuration OK")
				return nil
			}
			return runPublisher(ctx, opts, lg)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	fs := root.Flags()
	fs.String("bind", "tcp://*:5561", "PUB endpoint to bind")
	fs.String("sync-bind", "tcp://*:5562", "sync (handshake) endpoint to bind")
	fs.String("recovery-bind", "tcp://*:5563", "recovery endpoint to bind (empty: no recovery)")
	fs.Int("history-messages", 100_000, "messages retained per topic for recovery (0: none)")
	fs.Int("history-bytes", 64<<20, "payload bytes retained per topic for recovery (0: no byte limit)")
	fs.Int("max-batch-records", 0, "records per batched message (0: up to 65535; 1: no batching)")
	fs.Duration("linger", 0, "wait this long for more records before sending a batch")
	fs.Int("expect", 1, "subscribers that must join before publishing (0: publish at once)")
	fs.Int("count", 1_000_000, "messages to publish (ignored with --stdin)")
	fs.String("payload", "Rhubarb", "payload of every message")
	fs.Int("size", 0, "random payload of this many bytes instead of --payload")
	fs.String("topics", "update", "comma-separated topics, published round-robin")
	fs.Float64("rate", 0, "messages per second (0: as fast as possible)")
	fs.Bool("stdin", false, "publish each input line: topic<TAB>payload, or payload on the first topic")
	fs.Duration("quorum-timeout", 0, "give up waiting for quorum after this long (0: wait forever)")
	fs.String("quorum-policy", "fail", "at quorum timeout: fail, or proceed with those present")
	fs.Duration("drain-timeout", 30*time.Second, "how long to wait at the end for subscribers to take what was published")
	fs.String("id", "", "publisher id, 32 hex digits (default: derived from host and --bind, so restarts keep it)")
	fs.Duration("heartbeat", time.Second, "heartbeat interval (tail-loss detection)")
	fs.Duration("slow-timeout", 500*time.Millisecond, "disconnect a subscriber that takes no data for this long")
	fs.Int("queue-bytes", 4<<20, "per-subscriber send queue bound in bytes")
	fs.String("quorum", "", "with gossip: all, majority or N live subscriber members whose topics match (instead of --expect)")
	fs.Duration("settle", 2*time.Second, "with --quorum: let the cluster gossip its members this long before judging the quorum")
	fs.String("quorum-lost", "continue", "with --quorum, when the quorum is lost after start: continue, or pause publishing until it is back")
	fs.Bool("check-config", false, "validate the configuration and exit")
	cli.AddGossipFlags(fs)
	cli.AddCommonFlags(fs)
	root.AddCommand(newDemoCommand(), newBenchCommand(), newRawPubCommand(), newRawSubCommand())
	return root
}

type options struct {
	pub       coord.PublisherConfig
	count     int
	payload   []byte
	size      int
	topics    []string
	rate      float64
	stdin     bool
	drain     time.Duration
	checkOnly bool
}

func loadOptions(cmd *cobra.Command) (options, *zap.Logger, error) {
	var o options
	c, err := cli.Load(cmd, "SYNCPUB")
	if err != nil {
		return o, nil, err
	}
	lg, err := c.Logger()
	if err != nil {
		return o, nil, err
	}
	cfg := coord.DefaultPublisherConfig()
	cfg.Logger = lg
	var payload, policy, id string
	errs := []error{}
	get := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var e error
	cfg.Bind, e = c.String("bind")
	get(e)
	cfg.SyncBind, e = c.String("sync-bind")
	get(e)
	cfg.RecoveryBind, e = c.String("recovery-bind")
	get(e)
	cfg.History.MaxMessages, e = c.Int("history-messages")
	get(e)
	var historyBytes int
	historyBytes, e = c.Int("history-bytes")
	get(e)
	cfg.History.MaxBytes = int64(historyBytes)
	cfg.MaxBatchRecords, e = c.Int("max-batch-records")
	get(e)
	cfg.Linger, e = c.Duration("linger")
	get(e)
	cfg.Expect, e = c.Int("expect")
	get(e)
	o.count, e = c.Int("count")
	get(e)
	payload, e = c.String("payload")
	get(e)
	o.size, e = c.Int("size")
	get(e)
	o.topics, e = c.Strings("topics")
	get(e)
	o.rate, e = c.Float("rate")
	get(e)
	o.stdin, e = c.Bool("stdin")
	get(e)
	cfg.QuorumTimeout, e = c.Duration("quorum-timeout")
	get(e)
	policy, e = c.Choice("quorum-policy", "fail", "proceed")
	get(e)
	o.drain, e = c.Duration("drain-timeout")
	get(e)
	id, e = c.String("id")
	get(e)
	cfg.HeartbeatInterval, e = c.Duration("heartbeat")
	get(e)
	cfg.Wire.SlowTimeout, e = c.Duration("slow-timeout")
	get(e)
	cfg.Wire.QueueBytes, e = c.Int("queue-bytes")
	get(e)
	o.checkOnly, e = c.Bool("check-config")
	get(e)
	var quorum, lost string
	quorum, e = c.String("quorum")
	get(e)
	cfg.Settle, e = c.Duration("settle")
	get(e)
	lost, e = c.Choice("quorum-lost", "continue", "pause")
	get(e)
	cfg.Gossip, e = c.Gossip()
	get(e)
	if len(errs) > 0 {
		return o, nil, errs[0]
	}
	cfg.QuorumPolicy, _ = coord.ParseQuorumPolicy(policy)
	cfg.QuorumLost, _ = coord.ParseLostPolicy(lost)
	if quorum != "" {
		if c.IsSet("expect") {
			return o, nil, cli.Usagef("quorum and expect: give one (expect counts handshakes, quorum counts live cluster members)")
		}
		if cfg.Quorum, err = coord.ParseQuorumRule(quorum); err != nil {
			return o, nil, cli.Usagef("quorum: %v", err)
		}
		if cfg.Gossip == nil {
			return o, nil, cli.Usagef("quorum %s counts gossip members: give --gossip-bind (the address subscribers --join), or use --expect", quorum)
		}
		cfg.Expect = 0
	}
	if !o.stdin {
		cfg.Topics = o.topics // announced to the cluster; --stdin may publish any topic
	}
	if id != "" {
		if cfg.ID, err = envelope.ParseID(id); err != nil {
			return o, nil, cli.Usagef("id: %v", err)
		}
	} else {
		cfg.ID = stableID(cfg.Bind)
	}
	if len(o.topics) == 0 {
		return o, nil, cli.Usagef("topics: at least one topic is needed")
	}
	for _, t := range o.topics {
		if err := envelope.CheckTopic([]byte(t), envelope.KindData, envelope.Limits{}); err != nil {
			return o, nil, cli.Usagef("topics: %v", err)
		}
	}
	if o.size > cfg.MaxPayload {
		return o, nil, cli.Usagef("size: %d exceeds the %d-byte payload limit", o.size, cfg.MaxPayload)
	}
	if err := cfg.Validate(); err != nil {
		return o, nil, cli.Usagef("%v", err)
	}
	o.payload = []byte(payload)
	o.pub = cfg
	return o, lg, nil
}

// stableID derives the publisher id from the host and bind endpoint, so a
// restarted publisher keeps its id and subscribers see a new epoch of the
// same publisher rather than a stranger.
func stableID(bind string) envelope.ID {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "|" + bind))
	var id envelope.ID
	copy(id[:], sum[:])
	return id
}

func runPublisher(ctx context.Context, o options, lg *zap.Logger) error {
	pub, err := coord.NewPublisher(o.pub)
	if err != nil {
		return err
	}
	closePub := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), o.drain)
		defer cancel()
		return pub.Shutdown(cctx)
	}
	if addr := pub.GossipAddr(); addr != "" {
		lg.Info("gossip", zap.String("addr", addr), zap.String("join_with", "--join "+addr))
	}
	lg.Info("waiting for subscribers", zap.Stringer("quorum", pub.Quorum()))
	if err := pub.WaitQuorum(ctx); err != nil {
		closePub()
		return err
	}
	start := time.Now()
	n, err := publish(ctx, pub, o)
	if err != nil {
		closePub()
		return err
	}
	if err := closePub(); err != nil {
		return fmt.Errorf("published %d messages but could not hand all to subscribers: %w", n, err)
	}
	el := time.Since(start)
	st := pub.Stats()
	lg.Info("done", zap.Int("published", n), zap.Duration("elapsed", el),
		zap.Float64("msgs_per_sec", float64(n)/el.Seconds()), zap.Uint64("batches", st.Batches),
		zap.Uint64("slow_consumers", st.Wire.SlowConsumers))
	return nil
}
