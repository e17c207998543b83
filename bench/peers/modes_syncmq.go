package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/journal"
)

// runSyncLatencySub is a syncsub that measures latency: it joins the
// publisher like syncsub, prints "ready" once started (as syncsub logs
// "subscriber started"), records now - Event.Time for every message
// until END (or SIGINT), then prints "Received N updates" and writes the samples.
// Event.Time is the publish time of the record's batch, i.e. of its first
// record: for later records in a batch the measured latency is an upper
// bound.
func runSyncLatencySub(args []string) error {
	fs := flagSet("synclatsub")
	connect := fs.String("connect", "", "publisher's PUB endpoint")
	syncEP := fs.String("sync", "", "publisher's sync endpoint")
	id := fs.String("id", "", "subscriber id")
	expect := fs.Int("expect", 0, "messages expected (sizes the sample buffer)")
	latOut := fs.String("latency-out", "", "write publish-to-deliver latencies here")
	_ = fs.Parse(args)
	lats := make([]int64, 0, *expect)
	done := make(chan struct{})
	ended := false
	sub, err := coord.NewSubscriber(coord.SubscriberConfig{
		Connect: *connect, Sync: *syncEP, ID: *id,
		Handler: func(ev coord.Event) {
			switch ev.Type {
			case coord.EventMessage:
				lats = append(lats, time.Now().UnixNano()-ev.Time)
			case coord.EventEnd:
				if !ended {
					ended = true
					close(done)
				}
			}
		},
	})
	if err != nil {
		return err
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	fmt.Println("ready")
	select {
	case <-done:
	case <-interrupt: // the bench gave up waiting: report what we have
	}
	sub.Close() // the handler is not called after this
	st := sub.Stats()
	fmt.Printf("Received %d updates\n", len(lats))
	if st.Lost > 0 {
		fmt.Printf("lost %d\n", st.Lost)
	}
	return writeLatencies(*latOut, lats)
}

// runSyncSubs runs --n coord.Subscribers in this one process, each with
// its own connections as n programs would have, counting messages until
// every one has seen END (or SIGINT). It prints "ready" once all are
// started, "caught up" as soon as --caught-up messages were counted over
// all of them, and then "Received N updates" with N over all of them.
func runSyncSubs(args []string) error {
	fs := flagSet("syncsubs")
	connect := fs.String("connect", "", "publisher's PUB endpoint")
	syncEP := fs.String("sync", "", "publisher's sync endpoint")
	idPrefix := fs.String("id-prefix", "bench-", "subscriber ids are this and their index")
	n := fs.Int("n", 1, "subscribers")
	startAt := fs.String("start-at", coord.StartAtJoin, "join, earliest or a sequence (SubscriberConfig.StartAt)")
	caughtUp := fs.Int64("caught-up", 0, `print "caught up" once this many messages were counted (0: never)`)
	_ = fs.Parse(args)
	var (
		total      atomic.Int64
		lost       atomic.Uint64
		ended      atomic.Int64
		done       = make(chan struct{})
		caught     = make(chan struct{})
		caughtOnce sync.Once
		subs       []*coord.Subscriber
	)
	defer func() {
		for _, s := range subs {
			s.Close()
		}
	}()
	for i := 0; i < *n; i++ {
		var endedOnce bool // touched only by this subscriber's Handler goroutine
		s, err := coord.NewSubscriber(coord.SubscriberConfig{
			Connect: *connect, Sync: *syncEP, ID: fmt.Sprint(*idPrefix, i), StartAt: *startAt,
			Handler: func(ev coord.Event) {
				switch ev.Type {
				case coord.EventMessage:
					if total.Add(1) == *caughtUp {
						caughtOnce.Do(func() { close(caught) })
					}
				case coord.EventLoss:
					if ev.To >= ev.From {
						lost.Add(ev.To - ev.From + 1)
					}
				case coord.EventEnd:
					if !endedOnce {
						endedOnce = true
						if ended.Add(1) == int64(*n) {
							close(done)
						}
					}
				}
			},
		})
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		subs = append(subs, s)
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	fmt.Println("ready")
wait:
	for {
		select {
		case <-done:
			break wait
		case <-caught:
			fmt.Println("caught up")
			caught = nil
		case <-interrupt: // the bench gave up waiting: report what we have
			break wait
		}
	}
	for _, s := range subs {
		s.Close() // the handler is not called after this
	}
	fmt.Printf("Received %d updates\n", total.Load())
	if l := lost.Load(); l > 0 {
		fmt.Printf("lost %d\n", l)
	}
	return nil
}

// Late-joiner publisher settings: retention holds the whole backlog and
// the live messages, with room for framing; the replay budget stays at
// its default unless --replay-unlimited.
const (
	lateRecordOverhead = 64      // bytes per record budgeted above its payload
	unlimitedReplay    = 1 << 36 // bytes/s and burst: 64 GiB/s, out of the way
)

// runSyncLatePub is syncpub for a late joiner, on coord as a Go program
// would write it: syncpub's defaults (DefaultPublisherConfig; with
// --data-dir, journal.DefaultConfig, whose fsync policy is syncpub's
// default, every second), except that publishing starts at once (Expect
// 0) and retention holds --backlog + --count records; with
// --replay-unlimited, the replay bandwidth (syncpub's
// --recovery-bytes-rate and --recovery-host-bytes-rate) too. It
// publishes --backlog records, waits until they were handed to the
// socket (and so retained), prints "ready", waits for "go" on stdin,
// publishes --count more, and shuts down: END, then it waits until its
// subscribers took everything.
func runSyncLatePub(args []string) error {
	fs := flagSet("synclatepub")
	bind := fs.String("bind", "", "PUB endpoint")
	syncBind := fs.String("sync-bind", "", "sync endpoint")
	recoveryBind := fs.String("recovery-bind", "", "recovery endpoint")
	backlog := fs.Int("backlog", 0, "records published before ready")
	count := fs.Int("count", 0, "records published after go")
	size := fs.Int("size", 1024, "payload bytes")
	dataDir := fs.String("data-dir", "", "journal directory (empty: memory history)")
	replayUnlimited := fs.Bool("replay-unlimited", false, "raise the replay bandwidth limits out of the way")
	drain := fs.Duration("drain-timeout", 10*time.Minute, "bound on the shutdown")
	_ = fs.Parse(args)
	keep := *backlog + *count
	budget := max(int64(keep)*int64(*size+lateRecordOverhead)*5/4, 128<<20)
	cfg := coord.DefaultPublisherConfig()
	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = *bind, *syncBind, *recoveryBind
	cfg.Expect = 0
	cfg.History.MaxMessages, cfg.History.MaxBytes = keep, budget
	if *dataDir != "" {
		cfg.DataDir = *dataDir
		cfg.Journal = journal.DefaultConfig()
		cfg.Journal.MaxBytes = 2 * budget
		cfg.Journal.Retention = journal.Retention{MaxMessages: int64(keep)}
	}
	if *replayUnlimited {
		l := &cfg.RecoveryLimit
		l.HostBytesRate, l.HostBytesBurst = unlimitedReplay, unlimitedReplay
		l.GlobalBytesRate, l.GlobalBytesBurst = unlimitedReplay, unlimitedReplay
	}
	pub, err := coord.NewPublisher(cfg)
	if err != nil {
		return err
	}
	defer pub.Close()
	ctx := context.Background()
	pool := make([]byte, 2**size+4096)
	_, _ = rand.Read(pool)
	publish := func(from, n int) error {
		for i := from; i < from+n; i++ {
			off := (i * 7919) % (len(pool) - *size)
			if _, err := pub.Publish(ctx, "update", pool[off:off+*size]); err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
		}
		return nil
	}
	if err := publish(0, *backlog); err != nil {
		return err
	}
	for pub.Stats().Published < uint64(*backlog) {
		time.Sleep(2 * time.Millisecond)
	}
	fmt.Println("ready")
	if err := waitGo(); err != nil {
		return err
	}
	if err := publish(*backlog, *count); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, *drain)
	defer cancel()
	if err := pub.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Println("published", *count)
	return nil
}
