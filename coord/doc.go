// Package coord is syncmq's synchronized publish-subscribe: a Publisher
// that publishes nothing until a quorum of subscribers has proven its data
// path, and a Subscriber that hands the application every record in order
// or reports, with a range and a cause, what it could not get. The wire
// protocol is in docs/protocol.md; this package is one implementation of
// both ends.
//
// # Publishing
//
// Configure with DefaultPublisherConfig and change what you need; every
// field says its unit and what zero means:
//
//	cfg := coord.DefaultPublisherConfig()
//	cfg.Bind, cfg.SyncBind, cfg.RecoveryBind = "tcp://*:5561", "tcp://*:5562", "tcp://*:5563"
//	cfg.Expect = 3                           // or Quorum with Gossip: all, majority, N live members
//	pub, err := coord.NewPublisher(cfg)      // binds, starts probing; does not block
//	err = pub.WaitQuorum(ctx)                // three subscribers proved their data path
//	seq, err := pub.Publish(ctx, "prices.eur", payload)
//	err = pub.Shutdown(ctx)                  // send the rest, END, wait until delivered
//
// Publish is safe from many goroutines and numbers each topic's records
// 1, 2, 3... in the order the calls return; subscribers receive records in
// the order Publish accepted them. It blocks before the quorum, while
// MaxPending bytes wait for the socket, and (QuorumLost pause) while a
// membership quorum is lost.
//
// A subscriber counts toward the quorum only after it quoted, in a READY
// on the sync endpoint, the nonce of a HELLO its own data connection
// received: one nonce per connection, one subscriber id per nonce. Before
// publishing starts, a subscriber whose connection goes away stops
// counting. A data connection that has not done this within JoinTimeout is
// closed.
//
// With RecoveryBind set the publisher keeps recent batches (History, one
// memory budget for all topics) and replays them to subscribers that lost
// some, over the recovery endpoint. With DataDir it keeps them on disk
// instead (package journal): a publisher that crashes and comes back on
// the same directory still serves what its earlier epoch sent, and its
// subscribers repair the rest of that epoch before they go on.
//
// A subscriber slower than the publisher never slows it (SlowPolicy,
// default SlowCatchUp): the publisher goes at its fastest subscriber's
// pace; one that falls behind is fed from that history on its own data
// connection at the pace it reads, then rejoins the live stream. A late
// joiner that starts before its join is fed the same way. Only what the
// history no longer holds when its turn comes is a gap. SlowWait makes
// the slowest set everyone's pace; SlowCut disconnects slow subscribers,
// which then repair over the recovery endpoint.
//
// # Subscribing
//
//	cfg := coord.DefaultSubscriberConfig()
//	cfg.Connect, cfg.Sync = "tcp://pubhost:5561", "tcp://pubhost:5562"
//	cfg.Subscribe = []string{"prices."}
//	cfg.Handler = coord.Handlers{
//		OnMessage: func(m coord.Message) { ... },  // in order per publisher and topic
//		OnLoss:    func(l coord.Loss) { ... },     // a range that will never come, and why
//	}.Handler()
//	sub, err := coord.NewSubscriber(cfg)  // connects; does not block
//	<-sub.Done()                          // END from every publisher (or Close)
//	err = sub.Err()                       // nil, or a *JobError with the Outcome
//	err = sub.Shutdown(ctx)               // leave the gossip cluster gracefully, stop
//
// A subscriber whose publishers never join within ConnectTimeout (30 s
// by default) ends its job as OutcomeUnreachable: Done closes, and Err
// says how far each publisher got.
//
// The Handler receives every Event from one goroutine, in order: joined,
// message (per publisher and topic in sequence order), loss (a range that
// will never come, with its cause), caught-up, restart (the publisher came
// back with a new epoch), end (the epoch is over; Cause says whether it
// completed), connected and disconnected. A gap is repaired over the
// publisher's recovery endpoint before later records are delivered; what
// cannot be repaired is reported as an EventLoss, never skipped silently.
// The Handler may call Close or Shutdown.
//
// With StateDir a subscriber checkpoints what it handed to the Handler and
// resumes there after a restart (at least once: at most one batch per topic
// again). Without it, a subscriber that comes back under the same ID is
// told by the publisher where it first joined and starts each topic there:
// what it had delivered before is delivered again, and what the publisher
// no longer retains is reported lost.
//
// # Security
//
// For tls:// endpoints, give the publisher and each subscriber a *TLS (LoadTLS from PEM files, with Reload for a rotation,
// or NewTLS from memory): TLS 1.3, both sides show a certificate that the
// other's CA pool verifies, and a subscriber joins only under the
// identity its certificate names (CertIdentity). PublisherConfig.Allow
// lists the identities that may subscribe. See docs/security.md.
//
// # Discovery
//
// With Gossip set, publishers advertise their endpoints and topics in a
// hashicorp/memberlist cluster; subscribers connect to every publisher
// whose topics overlap their subscriptions, including later ones. See
// docs/membership.md.
//
// # Relaying
//
// Package relay forwards one publisher's stream to subscribers of its own
// under that publisher's id and epoch (PublisherConfig.ID, Epoch). Three
// methods exist for it: Publisher.PublishSeq publishes a record with the
// sequence upstream gave it, Publisher.PublishLoss tells subscribers that
// a range will never come and why (a LOSS message: they report it with
// that cause), and Subscriber.HoldBye holds the BYE upstream until the
// relay's own subscribers confirmed.
//
// # Lifecycle
//
// Every component has the same two ends. Shutdown(ctx) is graceful: it
// finishes what was started (the publisher sends what it accepted and END,
// waits for its subscribers, leaves the cluster), bounded by ctx. Close()
// stops at once (the publisher as after a crash: no END, no leave). Both
// are idempotent, both make every blocked call return ErrClosed, and both
// wait for every goroutine they started. Both are safe from the
// Subscriber's Handler and from OnMember callbacks.
//
// # Observing
//
// Publisher.Stats and Subscriber.Stats return snapshots of counters and
// gauges (package metrics exports them to Prometheus); Subscriber.Evidence
// feeds package diagnose. Limits a peer can hit (connections, subscribers,
// topics, request rates) are counted there and logged at most once per
// interval.
package coord
