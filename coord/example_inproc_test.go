package coord_test

import (
	"context"
	"fmt"
	"time"

	"github.com/syncmq/syncmq/coord"
)

// Subscribers in the publisher's own process connect over inproc://:
// the same handshake, envelopes and repair as over tcp://, with no
// socket, and each message handed over without a copy. The names are
// the process's; bind them before or after connecting.
func Example_inproc() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pub, err := coord.NewPublisher(coord.PublisherConfig{
		Bind:         "inproc://prices",
		SyncBind:     "inproc://prices-sync",
		RecoveryBind: "inproc://prices-recovery",
		Expect:       1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan []string, 1)
	var got []string
	sub, err := coord.NewSubscriber(coord.SubscriberConfig{
		Connect: "inproc://prices",
		Sync:    "inproc://prices-sync",
		Handler: func(ev coord.Event) {
			switch ev.Type {
			case coord.EventMessage:
				// ev.Payload is valid during the call: copy what you keep.
				got = append(got, fmt.Sprintf("%s#%d=%s", ev.Topic, ev.Seq, ev.Payload))
			case coord.EventEnd:
				done <- got
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()

	if err := pub.WaitQuorum(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for _, price := range []string{"1.08", "1.09", "1.07"} {
		if _, err := pub.Publish(ctx, "prices.eur", []byte(price)); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := pub.Shutdown(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-done)
	// Output:
	// [prices.eur#1=1.08 prices.eur#2=1.09 prices.eur#3=1.07]
}
