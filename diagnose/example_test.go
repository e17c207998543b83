package diagnose_test

import (
	"fmt"

	"github.com/syncmq/syncmq/diagnose"
)

func ExampleDiagnose() {
	r := diagnose.Diagnose(diagnose.Evidence{
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
	// ✔ Do the messages arrive on a SUB socket? → yes: syncmq subscribers receive on SUB sockets (98450 received, 350 recovered, 1200 lost)
	// ✔ Did the subscriber reach the publisher (HELLO on SUB, then the sync handshake)? → yes: the handshake completed, so the data path was proven
	// ✔ Do you set a subscription for the messages? → yes: all 2 published topic(s) match "orders."
	// ✔ Do you start the SUB socket after the PUB? → no: the subscriber was connected before publishing started
	// ✘ Are you losing messages while connected (high-water mark, slow subscriber)? → yes: 4 gap(s) while connected, 2 slow-consumer disconnect(s), 0 publisher queue drop(s); 1200 message(s) lost
	//     fix: the subscriber cannot keep up: consume faster (less work per message, more subscribers), raise --max-held-bytes and the publisher's --slow-timeout, and keep History retention (--history-messages) longer than the worst stall
	// ✔ Did the subscriber reconnect? → no reconnects
	// ✔ Did the publisher restart? → no new publisher epoch seen
	// ✔ Did the publisher go silent before END? → no: every publisher kept sending until END
	// ✘ Did recovery repair every gap? → no: 1200 lost, 350 recovered
	//     fix: look at the cause of each Loss event; raise the publisher's --history-messages/--history-bytes and --repair-timeout if they say beyond-retention or timeout
	// ✔ Are you using REQ and REP? → yes, for the sync handshake: no errors
	// ✔ Are you using a socket in more than one thread? → no: each syncmq socket is owned by one goroutine, others reach it over channels
	// Cause: slow-consumer
	// Fix: the subscriber cannot keep up: consume faster (less work per message, more subscribers), raise --max-held-bytes and the publisher's --slow-timeout, and keep History retention (--history-messages) longer than the worst stall
}
