package coord_test

import (
	"context"
	"fmt"
	"time"

	"github.com/syncmq/syncmq/coord"
)

// A publisher waits for two subscribers, publishes three updates, and the
// subscribers receive them in order.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pub, err := coord.NewPublisher(coord.PublisherConfig{
		Bind:     "tcp://127.0.0.1:0", // port 0: the OS picks one
		SyncBind: "tcp://127.0.0.1:0",
		Expect:   2,
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	done := make(chan string, 2)
	for _, name := range []string{"alpha", "beta"} {
		var got []string
		sub, err := coord.NewSubscriber(coord.SubscriberConfig{
			Connect:   pub.Endpoint(),
			Sync:      pub.SyncEndpoint(),
			ID:        name,
			Subscribe: []string{"prices."},
			// Handler runs on the subscriber's goroutine, one event at a time.
			Handler: func(ev coord.Event) {
				switch ev.Type {
				case coord.EventMessage:
					got = append(got, fmt.Sprintf("%s#%d=%s", ev.Topic, ev.Seq, ev.Payload))
				case coord.EventLoss:
					got = append(got, fmt.Sprintf("lost %d..%d (%s)", ev.From, ev.To, ev.Cause))
				case coord.EventEnd:
					done <- fmt.Sprint(name, " ", got)
				}
			},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer sub.Close()
	}

	if err := pub.WaitQuorum(ctx); err != nil { // both subscribers proved their data path
		fmt.Println(err)
		return
	}
	for _, price := range []string{"1.08", "1.09", "1.07"} {
		if _, err := pub.Publish(ctx, "prices.eur", []byte(price)); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := pub.Shutdown(ctx); err != nil { // sends END and waits until it is delivered
		fmt.Println(err)
		return
	}
	a, b := <-done, <-done
	if a > b {
		a, b = b, a
	}
	fmt.Println(a)
	fmt.Println(b)
	// Output:
	// alpha [prices.eur#1=1.08 prices.eur#2=1.09 prices.eur#3=1.07]
	// beta [prices.eur#1=1.08 prices.eur#2=1.09 prices.eur#3=1.07]
}
