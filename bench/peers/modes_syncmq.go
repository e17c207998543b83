package main

import (
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/syncmq/syncmq/coord"
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
