package recovery_test

import (
	"fmt"
	"time"

	"github.com/syncmq/syncmq/proto/fetch"

	"github.com/syncmq/syncmq/recovery"
)

// printer is a Handler that prints every output.
type printer struct{}

func (printer) Deliver(seq uint64, p []byte, _ bool) { fmt.Printf("deliver %d %s\n", seq, p) }
func (printer) Request(from, to uint64)              { fmt.Printf("request %d..%d\n", from, to) }
func (printer) Loss(from, to uint64, c recovery.Cause) {
	fmt.Printf("loss %d..%d cause=%v\n", from, to, c)
}
func (printer) CaughtUp(seq uint64) { fmt.Printf("caught up at %d\n", seq) }

func ExampleStream() {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := recovery.NewStream(recovery.DefaultStreamConfig(), 1, printer{})
	if err != nil {
		panic(err)
	}
	s.Live(1, []byte("a"), now)
	s.Live(4, []byte("d"), now) // 2 and 3 are missing: held, and requested
	s.Replay(3, []byte("c"), now)
	s.RepairDone(fetch.StatusPartial, 3, now) // 2 is no longer held
	s.Live(5, []byte("e"), now)
	// Output:
	// deliver 1 a
	// request 2..3
	// loss 2..2 cause=beyond-retention
	// deliver 3 c
	// deliver 4 d
	// caught up at 4
	// deliver 5 e
}

// ExampleLimiter shows a recovery server's use of a Limiter: one Allow per
// request, one Take per REPLAY batch, waiting when told to and answering
// "rate limited" if the wait would keep the client too long.
func ExampleLimiter() {
	cfg := recovery.DefaultLimiterConfig()
	cfg.HostBytesRate, cfg.HostBytesBurst = 1<<20, 1<<20 // 1 MiB/s per host
	lim, err := recovery.NewLimiter(cfg)
	if err != nil {
		panic(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	remote := "192.0.2.7:51234" // the port is ignored: a host's connections share its budget
	if !lim.Allow(remote, now) {
		fmt.Println("ERROR 2 rate limited")
		return
	}
	const batch, patience = 512 << 10, time.Second
	for i := 0; i < 4; i++ {
		for {
			wait, ok := lim.Take(remote, batch, now)
			if ok {
				break
			}
			if wait > patience {
				fmt.Println("ERROR 2 rate limited")
				return
			}
			now = now.Add(wait) // a server waits on a timer, or its context
		}
		fmt.Printf("REPLAY %d at %v\n", i, now.Sub(start))
	}
	// Output:
	// REPLAY 0 at 0s
	// REPLAY 1 at 0s
	// REPLAY 2 at 500ms
	// REPLAY 3 at 1s
}
