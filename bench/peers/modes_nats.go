package main

import (
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
)

// Subjects: data goes to natsSubjectPrefix+topic; the end marker is a
// message on the first data subject whose reply subject is natsEndReply,
// so it reaches each subscriber through the same subscription, after the
// data, and costs the data path only a string comparison.
const (
	natsSubjectPrefix = "bench.d."
	natsEndReply      = "bench.end"
)

// runNATSServer embeds nats-server on a random loopback port with its
// defaults, prints "ready <url>" and runs until stdin closes.
func runNATSServer(args []string) error {
	fs := flagSet("natsserver")
	_ = fs.Parse(args)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
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

// runNATSPub connects, prints "ready", waits for "go" on stdin, publishes
// --count messages round-robin over the topics, then the end marker, and
// flushes (a round trip: the server has processed everything).
func runNATSPub(args []string) error {
	fs := flagSet("natspub")
	url := fs.String("url", "", "server URL")
	count := fs.Int("count", 0, "messages")
	size := fs.Int("size", 0, "payload bytes (0: the zguide's Rhubarb)")
	topics := fs.Int("topics", 1, "topics")
	rate := fs.Float64("rate", 0, "messages per second (0: as fast as possible); stamps the send time in the payload")
	flushTimeout := fs.Duration("flush-timeout", 10*time.Minute, "bound on the final flush; a server behind on many subscribers answers it late")
	_ = fs.Parse(args)
	nc, err := nats.Connect(*url, nats.Name("bench-pub"))
	if err != nil {
		return err
	}
	defer nc.Close()
	subjects := natsSubjects(shape{topics: *topics})
	pl := newPayloads(*size, *rate > 0)
	fmt.Println("ready")
	if err := waitGo(); err != nil {
		return err
	}
	pace := pacer{rate: *rate}
	for i := 0; i < *count; i++ {
		pace.wait(i)
		if err := nc.Publish(subjects[i%len(subjects)], pl.next(i)); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subjects[0], Reply: natsEndReply}); err != nil {
		return err
	}
	if err := nc.FlushTimeout(*flushTimeout); err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	fmt.Println("published", *count)
	return nil
}

func natsSubjects(s shape) []string {
	names := s.topicNames()
	for i, n := range names {
		names[i] = natsSubjectPrefix + n
	}
	return names
}

// runNATSSub subscribes (to the one subject, or to all with a wildcard),
// flushes so the server has the subscription, prints "ready", and counts
// messages until it has --expect of them or the end marker arrives. Then
// it prints "Received N updates" at once, followed by what NATS dropped.
// With no message for --idle after the first, it gives up waiting (the end
// marker itself can be dropped); on SIGINT too.
func runNATSSub(args []string) error {
	fs := flagSet("natssub")
	url := fs.String("url", "", "server URL")
	topics := fs.Int("topics", 1, "topics")
	expect := fs.Int64("expect", 0, "messages to wait for")
	latOut := fs.String("latency-out", "", "write publish-to-deliver latencies here (payloads carry the send time)")
	idle := fs.Duration("idle", 5*time.Second, "give up after this long without a message")
	_ = fs.Parse(args)
	var slow, disconnects atomic.Int64
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
	subject := natsSubjectPrefix + "update"
	if *topics > 1 {
		subject = natsSubjectPrefix + "*"
	}
	var (
		received atomic.Int64
		done     = make(chan struct{})
		doneOnce sync.Once
		latMu    sync.Mutex
		lats     []int64
	)
	finish := func() { doneOnce.Do(func() { close(done) }) }
	if *latOut != "" {
		lats = make([]int64, 0, *expect)
	}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Reply == natsEndReply {
			finish()
			return
		}
		if *latOut != "" && len(m.Data) >= 8 {
			l := time.Now().UnixNano() - int64(leUint64(m.Data))
			latMu.Lock()
			lats = append(lats, l)
			latMu.Unlock()
		}
		if received.Add(1) == *expect {
			finish()
		}
	})
	if err != nil {
		return err
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
		case <-interrupt: // the bench gave up waiting: report what we have
			break wait
		case now := <-tick.C:
			if n := received.Load(); n != seen || n == 0 {
				seen, seenAt = n, now
			} else if now.Sub(seenAt) > *idle {
				idled = true
				break wait
			}
		}
	}
	fmt.Printf("Received %d updates\n", received.Load())
	dropped, _ := sub.Dropped()
	fmt.Printf("dropped %d slow-consumer-events %d disconnects %d idled %v\n", dropped, slow.Load(), disconnects.Load(), idled)
	_ = sub.Unsubscribe()
	if *latOut != "" {
		latMu.Lock()
		defer latMu.Unlock()
		return writeLatencies(*latOut, lats)
	}
	return nil
}
