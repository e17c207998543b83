// Package wire is the only code in syncmq that talks ZMTP. It uses
// go-zeromq/zmq4 for what zmq4 does well (the ZMTP greeting, the NULL and
// PLAIN security handshakes, socket-type compatibility) and replaces the
// socket machinery whose behaviour the layers above cannot live with:
//
//   - Pub fans out to each subscriber through its own byte-bounded queue and
//     writer goroutine. A subscriber that cannot take data within
//     SlowTimeout is disconnected and reported; it never stalls the others.
//   - Every accepted connection does its handshake in its own goroutine with
//     a deadline, so silent or garbage-sending clients cannot block accept.
//     zmq4's handshake parser only sees bytes that passed a guard (single
//     commands of at most 64 KiB), and a panic in it fails that one
//     connection: garbage cannot crash the process.
//   - Sub supervises one connection per endpoint and reconnects forever with
//     capped backoff, resubscribing and reporting each (re)connect.
//   - Client does request/reply with deadlines and retries, recreating the
//     connection after a lost reply (the zguide's Lazy Pirate).
//   - Writes go through a buffered writer flushed when the queue runs dry,
//     reads through a buffered reader, so a burst costs a few syscalls.
//   - Messages are reference counted; a buffer goes back to its owner only
//     once every connection has written it, so reuse cannot corrupt data.
//   - Every message addressed to a subscriber is either written to its
//     kernel buffer or counted as dropped (PeerEvent.Dropped,
//     PubStats.Dropped); Pub.Drain flushes everything before a close.
//   - Close waits for every goroutine the package started.
//
// docs/transport.md lists each zmq4 defect with the evidence and the test
// that shows it absorbed.
package wire
