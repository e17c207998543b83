// Package wire is the only code in syncmq that talks ZMTP. It uses
// go-zeromq/zmq4 for what zmq4 does well (the ZMTP greeting, the NULL and
// PLAIN security handshakes, socket-type compatibility) and replaces the
// socket machinery whose behaviour the layers above cannot live with.
// (zmq4's PLAIN server accepts any username and password; authentication
// comes from TLS instead.)
//
//   - Pub fans out to each subscriber through its own queue and writer
//     goroutine. Send queues to every matching connection without waiting
//     on any one, then paces the caller to the fastest matching subscriber:
//     it waits only while every matching queue is above QueueBytes. A
//     slower subscriber falls behind alone; past MaxQueueBytes, or when a
//     64 KiB write makes no progress for SlowTimeout, it is disconnected
//     and reported (PeerSlow). However many subscribers are stalled, the
//     healthy ones are not.
//   - Queued messages are shared and reference counted: a buffer goes back
//     to its owner only once every connection has written it, so reuse
//     cannot corrupt data, and a message counts once in the Pub's memory
//     (PubStats.QueuedBytes), which MaxQueueBytes bounds as a whole.
//   - Each accepted connection has a ConnID. Per connection the PeerEvents
//     come as PeerConnected, PeerSubscribed for each new prefix, then
//     PeerSlow if it was cut as slow, and PeerDisconnected. SendTo queues a
//     message for one connection only if it subscribed to its topic; Kick
//     closes one.
//   - Every accepted connection does its handshake in its own goroutine with
//     a deadline, so silent or garbage-sending clients cannot block accept.
//     zmq4's handshake parser only sees bytes that passed a guard (single
//     commands of at most 64 KiB), and a panic in it fails that one
//     connection: garbage cannot crash the process.
//   - Everything a peer can make the process hold is bounded and counted
//     in Stats: handshakes in progress per source IP and in all
//     (MaxPendingPerIP, MaxPending), connections in all and per source IP
//     (MaxConnsPerIP), subscriptions per connection (MaxSubscriptions,
//     MaxSubscriptionBytes) and of all connections (SubscriptionBudget),
//     queued bytes, request size, idle Server connections (IdleTimeout).
//     Where a bound can be kept by closing a connection that holds a
//     place without using it, it is: the oldest handshake of the address
//     that floods, the largest subscriber that has not joined, the Server
//     connection idle the longest; so a peer that holds places cannot
//     keep another out. Refusals, evictions, handshake failures and bad
//     input are logged at warn level through internal/ratelog: one line
//     per reason per 10 s.
//   - An idle connection is cheap: about 3 KiB of heap and two small
//     goroutine stacks. Pub writers borrow a 64 KiB buffer only while busy;
//     readers that see only subscriptions or requests use small buffers.
//   - Sub supervises one connection per endpoint and reconnects forever with
//     capped backoff, resubscribing and reporting each (re)connect.
//   - Client does request/reply with deadlines and retries, recreating the
//     connection after a lost reply (the zguide's Lazy Pirate), and drops
//     its connection after IdleClose so it never writes into one the
//     Server closed for being idle.
//   - Server answers what it cannot take whole: a DEALER's empty delimiter
//     is stripped and echoed, and a request above MaxFrame or MaxFrames
//     reaches the Handler marked TooLarge, with the head of the frame, so
//     the application answers with its own error.
//   - Writes are batched, reads buffered, so a burst costs a few syscalls.
//   - A tls:// endpoint is ZMTP 3.0 inside TLS 1.3 with mutual
//     authentication (TLS). The TLS handshake runs before the ZMTP one, on
//     the connection's goroutine and within HandshakeTimeout; the identity
//     of the peer's verified certificate (CertIdentity) comes with every
//     PeerEvent and Request, and PubConfig.Allow refuses identities in the
//     handshake. TLS.Reload swaps certificates without touching
//     established connections.
//   - Every message addressed to a subscriber is either written to its
//     kernel buffer or counted as dropped (PeerEvent.Dropped,
//     PubStats.Dropped).
//   - Lifecycle: Pub and Server have Shutdown (graceful: Pub flushes every
//     queue and waits, bounded by ctx, for the connections its caller
//     selects to hang up; Server flushes the replies in service) and Close
//     (hard); Sub and Client have Close. All are idempotent, release every
//     blocked caller with ErrClosed and wait for the goroutines they
//     started.
//
// docs/transport.md lists each zmq4 defect with the evidence, the test
// that asserts zmq4 still has it, and the test that shows it absorbed;
// and the limits, with their defaults and what a peer sees at each.
package wire
