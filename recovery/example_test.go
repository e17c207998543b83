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
