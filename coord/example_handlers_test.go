package coord_test

import (
	"context"
	"fmt"
	"time"

	"github.com/syncmq/syncmq/coord"
)

// A subscriber built from DefaultSubscriberConfig takes records, losses
// and the end through Handlers, without a type switch, and waits for its
// job with Done and Err.
func ExampleHandlers() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pcfg := coord.DefaultPublisherConfig()
	pcfg.Bind, pcfg.SyncBind, pcfg.RecoveryBind = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	pcfg.Expect = 1
	pub, err := coord.NewPublisher(pcfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pub.Close()

	cfg := coord.DefaultSubscriberConfig()
	cfg.Connect, cfg.Sync = pub.Endpoint(), pub.SyncEndpoint()
	cfg.Subscribe = []string{"prices."}
	cfg.Handler = coord.Handlers{
		OnMessage: func(m coord.Message) { fmt.Printf("%s #%d %s\n", m.Topic, m.Seq, m.Payload) },
		OnLoss: func(l coord.Loss) {
			if l.OpenEnded {
				fmt.Printf("%s: everything from #%d on is unknown (%s)\n", l.Topic, l.From, l.Cause)
				return
			}
			fmt.Printf("%s: lost #%d-#%d (%s)\n", l.Topic, l.From, l.To, l.Cause)
		},
		OnEnd: func(e coord.End) { fmt.Println("end, completed:", e.Completed) },
	}.Handler()
	sub, err := coord.NewSubscriber(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()

	if err := pub.WaitQuorum(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for _, price := range []string{"1.08", "1.09"} {
		if _, err := pub.Publish(ctx, "prices.eur", []byte(price)); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := pub.Shutdown(ctx); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case <-sub.Done(): // END came from every publisher
		fmt.Println("job error:", sub.Err())
	case <-ctx.Done():
		fmt.Println(ctx.Err())
	}
	// Output:
	// prices.eur #1 1.08
	// prices.eur #2 1.09
	// end, completed: true
	// job error: <nil>
}
