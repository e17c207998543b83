// Package recovery holds the socket-free, clock-free parts of syncmq's gap
// recovery: everything between "a subscriber noticed a missing sequence
// number" and "the message was delivered or reported lost".
//
// The package is a set of pure state machines and codecs, in the style of
// etcd raft's Step/Tick: nothing here opens a socket, starts a goroutine,
// reads the clock or logs. Every input that depends on time takes an
// explicit now time.Time, and outputs are return values or synchronous
// calls on an interface the caller implements. The caller owns the sockets
// and the timers and feeds the results in.
//
// The parts, one file each:
//
//   - History (history.go) is the publisher's bounded per-topic retention
//     of recent messages, from which gaps are repaired.
//   - Limiter (limiter.go) rate-limits a recovery server: requests per
//     source host, and replay bytes per host and for all hosts together.
//   - Stream (stream.go) is the subscriber's ordering and gap state machine
//     for one (publisher, epoch, topic) stream: it delivers in order, holds
//     records after a gap (bounded in bytes), asks for repairs, and reports
//     Loss with a Cause when a gap cannot be repaired.
//
// The recovery channel's wire format is the proto/fetch package; the
// missing-message flowchart is the diagnose package.
//
// docs/runbook.md explains how the outputs of these parts show up in
// operation and what to do about each cause of loss.
//
// # Concurrency
//
// History is safe for one writer and any number of concurrent readers, and
// Limiter for concurrent use (a server may serve connections from several
// goroutines). Stream is a plain state machine that is not safe for
// concurrent use; its owner serialises calls, typically by calling it only
// from the goroutine that owns the subscriber's sockets. Codec functions
// and Diagnose are pure.
package recovery
