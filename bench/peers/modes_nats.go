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
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Subjects: data goes to natsSubjectPrefix+topic. NATS core's end marker
// is a message on the first data subject whose reply subject is
// natsEndReply, so it reaches each subscriber through the same
// subscription, after the data, and costs the data path only a string
// comparison. JetStream's is a message on natsEndSubject, stored in the
// stream after the data (a JetStream publish cannot carry a reply).
const (
	natsSubjectPrefix = "bench.d."
	natsEndReply      = "bench.end"
	natsEndSubject    = "bench.end"
	jsStreamName      = "BENCH"
	jsStreamSubjects  = "bench.>"
)

// runNATSServer embeds nats-server on a random loopback port with its
// defaults (and JetStream, storing under --store, with --js), prints
// "ready <url>" and runs until stdin closes.
func runNATSServer(args []string) error {
	fs := flagSet("natsserver")
	js := fs.Bool("js", false, "enable JetStream")
	store := fs.String("store", "", "JetStream storage directory")
	_ = fs.Parse(args)
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true}
	if *js {
		if *store == "" {
			return errors.New("--js needs --store")
		}
		opts.JetStream, opts.StoreDir = true, *store
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		return errors.New("nats-server not ready after 30s")
	}
	fmt.Println("ready", s.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

// runNATSPub connects (with --js, creates the stream), publishes --backlog
// messages if asked and waits until JetStream acknowledged them, prints
// "ready", waits for "go" on stdin, publishes --count messages
// round-robin over the topics, then the end marker. NATS core flushes (a
// round trip: the server has processed everything); JetStream publishes
// with PublishAsync and waits for every acknowledgement, then publishes
// the end marker synchronously.
func runNATSPub(args []string) error {
	fs := flagSet("natspub")
	url := fs.String("url", "", "server URL")
	count := fs.Int("count", 0, "messages")
	backlog := fs.Int("backlog", 0, "messages published before ready (JetStream)")
	size := fs.Int("size", 0, "payload bytes (0: the zguide's Rhubarb)")
	topics := fs.Int("topics", 1, "topics")
	rate := fs.Float64("rate", 0, "messages per second (0: as fast as possible); stamps the send time in the payload")
	storage := fs.String("js", "", "JetStream stream storage, memory or file (empty: NATS core)")
	flushTimeout := fs.Duration("flush-timeout", 10*time.Minute, "bound on the final flush or acknowledgements; a server behind on many subscribers answers late")
	_ = fs.Parse(args)
	nc, err := nats.Connect(*url, nats.Name("bench-pub"))
	if err != nil {
		return err
	}
	defer nc.Close()
	p, err := newNATSPublisher(nc, *storage, *flushTimeout)
	if err != nil {
		return err
	}
	subjects := natsSubjects(shape{Topics: *topics})
	pl := newPayloads(*size, *rate > 0)
	if *backlog > 0 {
		if err := p.publish(subjects, pl, 0, *backlog, &pacer{}); err != nil {
			return err
		}
		if err := p.complete(); err != nil {
			return fmt.Errorf("backlog: %w", err)
		}
	}
	fmt.Println("ready")
	if err := waitGo(); err != nil {
		return err
	}
	if err := p.publish(subjects, pl, *backlog, *count, &pacer{rate: *rate}); err != nil {
		return err
	}
	if err := p.end(subjects[0]); err != nil {
		return err
	}
	fmt.Println("published", *count, "stalls", p.stalls)
	return nil
}

// natsPublisher publishes on NATS core or, with js set, with JetStream's
// PublishAsync.
type natsPublisher struct {
	nc           *nats.Conn
	js           jetstream.JetStream
	flushTimeout time.Duration
	failed       atomic.Int64 // JetStream publishes acknowledged with an error
	stalls       int          // PublishAsync calls refused because too many were pending
}

func newNATSPublisher(nc *nats.Conn, storage string, flushTimeout time.Duration) (*natsPublisher, error) {
	p := &natsPublisher{nc: nc, flushTimeout: flushTimeout}
	if storage == "" {
		return p, nil
	}
	st := jetstream.MemoryStorage
	switch storage {
	case "memory":
	case "file":
		st = jetstream.FileStorage
	default:
		return nil, fmt.Errorf("js: %q is neither memory nor file", storage)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { p.failed.Add(1) }))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: jsStreamName, Subjects: []string{jsStreamSubjects}, Storage: st, Replicas: 1}); err != nil {
		return nil, fmt.Errorf("creating the stream: %w", err)
	}
	p.js = js
	return p, nil
}

// publish sends n messages, the first numbered from.
func (p *natsPublisher) publish(subjects []string, pl *payloads, from, n int, pace *pacer) error {
	for i := 0; i < n; i++ {
		pace.wait(i)
		j := from + i
		subj, data := subjects[j%len(subjects)], pl.next(j)
		if p.js == nil {
			if err := p.nc.Publish(subj, data); err != nil {
				return fmt.Errorf("message %d: %w", j, err)
			}
			continue
		}
		for {
			_, err := p.js.PublishAsync(subj, data)
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				p.stalls++ // acknowledgements are late: wait for them again, as a user would
				continue
			}
			if err != nil {
				return fmt.Errorf("message %d: %w", j, err)
			}
			break
		}
	}
	return nil
}

// complete waits until JetStream acknowledged every message published
// (NATS core: nothing to wait for here).
func (p *natsPublisher) complete() error {
	if p.js == nil {
		return nil
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-time.After(p.flushTimeout):
		return fmt.Errorf("%d publishes not acknowledged after %v", p.js.PublishAsyncPending(), p.flushTimeout)
	}
	if n := p.failed.Load(); n > 0 {
		return fmt.Errorf("%d publishes acknowledged with an error", n)
	}
	return nil
}

// end publishes the end marker after everything else.
func (p *natsPublisher) end(firstSubject string) error {
	if p.js == nil {
		if err := p.nc.PublishMsg(&nats.Msg{Subject: firstSubject, Reply: natsEndReply}); err != nil {
			return err
		}
		if err := p.nc.FlushTimeout(p.flushTimeout); err != nil {
			return fmt.Errorf("final flush: %w", err)
		}
		return nil
	}
	if err := p.complete(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.flushTimeout)
	defer cancel()
	_, err := p.js.Publish(ctx, natsEndSubject, nil)
	return err
}

func natsSubjects(s shape) []string {
	names := s.topicNames()
	for i, n := range names {
		names[i] = natsSubjectPrefix + n
	}
	return names
}

// natsCounter counts one subscription's (or ordered consumer's)
// messages until it has expect of them or sees the end marker.
type natsCounter struct {
	received atomic.Int64
	once     sync.Once
}

// runNATSSub subscribes --n times on one connection (to the one subject,
// or to all with a wildcard) or, with --js, creates --n ordered
// consumers of the stream from its first message, flushes so the server
// has them, prints "ready", and counts messages until each has --expect
// of them or the end marker arrives. Then it prints "Received N updates"
// (N over every subscription) at once, followed by what NATS dropped.
// With --caught-up it prints "caught up" as soon as as many messages were
// counted. With no message for --idle after the first, it gives up
// waiting (the end marker itself can be dropped); on SIGINT too.
func runNATSSub(args []string) error {
	fs := flagSet("natssub")
	url := fs.String("url", "", "server URL")
	topics := fs.Int("topics", 1, "topics")
	expect := fs.Int64("expect", 0, "messages to wait for, per subscription")
	n := fs.Int("n", 1, "subscriptions (ordered consumers with --js) on the connection")
	useJS := fs.Bool("js", false, "consume the JetStream stream with ordered consumers")
	caughtUp := fs.Int64("caught-up", 0, `print "caught up" once this many messages were counted (0: never)`)
	latOut := fs.String("latency-out", "", "write publish-to-deliver latencies here (payloads carry the send time)")
	idle := fs.Duration("idle", 5*time.Second, "give up after this long without a message")
	_ = fs.Parse(args)
	var slow, disconnects, consumeErrs atomic.Int64
	nc, err := nats.Connect(*url, nats.Name("bench-sub"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				slow.Add(1)
			}
		}),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnects.Add(1) }))
	if err != nil {
		return err
	}
	defer nc.Close()
	var (
		total        atomic.Int64
		finished     atomic.Int64
		done         = make(chan struct{})
		caught       = make(chan struct{})
		caughtOnce   sync.Once
		latMu        sync.Mutex
		lats         []int64
		subs         []*nats.Subscription
		consumptions []jetstream.ConsumeContext
	)
	if *latOut != "" {
		lats = make([]int64, 0, *expect*int64(*n))
	}
	counters := make([]natsCounter, *n)
	finish := func(c *natsCounter) {
		c.once.Do(func() {
			if finished.Add(1) == int64(*n) {
				close(done)
			}
		})
	}
	count := func(c *natsCounter, data []byte) {
		if *latOut != "" && len(data) >= 8 {
			l := time.Now().UnixNano() - int64(leUint64(data))
			latMu.Lock()
			lats = append(lats, l)
			latMu.Unlock()
		}
		if t := total.Add(1); t == *caughtUp {
			caughtOnce.Do(func() { close(caught) })
		}
		if c.received.Add(1) == *expect {
			finish(c)
		}
	}
	if *useJS {
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stream, err := js.Stream(ctx, jsStreamName)
		if err != nil {
			return err
		}
		for i := range counters {
			c := &counters[i]
			cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
			if err != nil {
				return fmt.Errorf("ordered consumer %d: %w", i, err)
			}
			cc, err := cons.Consume(func(m jetstream.Msg) {
				if m.Subject() == natsEndSubject {
					finish(c)
					return
				}
				count(c, m.Data())
			}, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) { consumeErrs.Add(1) }))
			if err != nil {
				return fmt.Errorf("consume %d: %w", i, err)
			}
			consumptions = append(consumptions, cc)
		}
	} else {
		subject := natsSubjectPrefix + "update"
		if *topics > 1 {
			subject = natsSubjectPrefix + "*"
		}
		for i := range counters {
			c := &counters[i]
			sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
				if m.Reply == natsEndReply {
					finish(c)
					return
				}
				count(c, m.Data)
			})
			if err != nil {
				return err
			}
			subs = append(subs, sub)
		}
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	fmt.Println("ready")
	// Idleness is judged from the count between ticks, which keeps the
	// clock out of the per-message path.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	idled := false
	var seen int64
	var seenAt time.Time
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
		case now := <-tick.C:
			if n := total.Load(); n != seen || n == 0 {
				seen, seenAt = n, now
			} else if now.Sub(seenAt) > *idle {
				idled = true
				break wait
			}
		}
	}
	fmt.Printf("Received %d updates\n", total.Load())
	var dropped int
	for _, sub := range subs {
		d, _ := sub.Dropped()
		dropped += d
		_ = sub.Unsubscribe()
	}
	for _, cc := range consumptions {
		cc.Stop()
	}
	fmt.Printf("dropped %d slow-consumer-events %d disconnects %d consume-errors %d idled %v\n", dropped, slow.Load(), disconnects.Load(), consumeErrs.Load(), idled)
	if *latOut != "" {
		latMu.Lock()
		defer latMu.Unlock()
		return writeLatencies(*latOut, lats)
	}
	return nil
}
