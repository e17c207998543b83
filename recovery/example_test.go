package recovery_test

import (
	"fmt"
	"time"

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
	s.RepairDone(recovery.StatusPartial, 3, now) // 2 is no longer held
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

func ExampleDiagnose() {
	r := recovery.Diagnose(recovery.Evidence{
		Subscriptions:           []string{"orders."},
		TopicsPublished:         []string{"orders.eu", "orders.us"},
		GapsWhileConnected:      4,
		SlowConsumerDisconnects: 2,
		LostMessages:            1200,
		RecoveredMessages:       350,
		Received:                98450,
		Checked:                 true,
		Joined:                  true,
	})
	fmt.Print(r)
	// Output:
	// Missing message problem solver
	// ✔ Are you losing messages in a SUB socket? → yes: syncmq subscribers receive on SUB sockets (98450 received, 350 recovered, 1200 lost)
	// ✔ Did the subscriber reach the publisher (HELLO on SUB, then the sync handshake)? → yes: the handshake completed, so the data path was proven
	// ✔ Do you set a subscription for the messages? → yes: all 2 published topic(s) match "orders."
	// ✔ Do you start the SUB socket after the PUB? → no: the subscriber was connected before publishing started
	// ✘ Are you losing messages while connected (high-water mark, slow subscriber)? → yes: 4 gap(s) while connected, 2 slow-consumer disconnect(s), 0 publisher queue drop(s); 1200 message(s) lost
	//     fix: the subscriber cannot keep up: consume faster (less work per message, more subscribers), raise the SUB receive high-water mark and StreamConfig.MaxHeld, and keep History retention longer than the worst stall
	// ✔ Did the subscriber reconnect? → no reconnects
	// ✔ Did the publisher restart? → no new publisher epoch seen
	// ✘ Did recovery repair every gap? → no: 1200 lost, 350 recovered
	//     fix: look at the cause of each Loss event; raise History retention and StreamConfig.RepairTimeout if they say beyond-retention or timeout
	// ✔ Are you using REQ and REP? → yes, for the sync handshake: no errors
	// – Are you using PUSH sockets? → no: syncmq uses PUB/SUB, REQ/REP and DEALER/ROUTER only
	// ✔ Do you check return codes on all methods? → yes: every socket call returns a Go error that syncmq checks
	// ✔ Are you using a socket in more than one thread? → no: each syncmq socket is owned by one goroutine, others reach it over channels
	// – Are you using the inproc:// transport, with more than one context? → no inproc:// endpoints
	// – Do you bind before you connect (inproc)? → no inproc:// endpoints
	// ✔ Are you using ROUTER sockets? → yes, for recovery: replies go back to the requesting connection; one that cannot be routed is dropped and shows as a timeout Loss
	// Cause: slow-consumer
	// Fix: the subscriber cannot keep up: consume faster (less work per message, more subscribers), raise the SUB receive high-water mark and StreamConfig.MaxHeld, and keep History retention longer than the worst stall
}
