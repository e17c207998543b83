// Package membership lets syncmq nodes find each other and detect
// failures. It wraps hashicorp/memberlist (SWIM gossip over UDP and TCP)
// and gossips a small Meta record per node: its role (publisher or
// subscriber), its ZeroMQ endpoints and its topics. Publishers use it to
// count the subscribers they wait for; subscribers use it to find
// publishers and their recovery endpoints.
//
// # Use
//
//	cfg := membership.DefaultConfig()
//	cfg.NodeName = "sub-7"
//	cfg.BindAddr = "0.0.0.0"
//	cfg.Join = []string{"10.0.0.1:7946"}
//	cfg.SecretKey, err = membership.ParseKey(os.Getenv("SYNCMQ_GOSSIP_KEY"))
//	cfg.Meta = membership.Meta{
//		Role:         membership.RoleSubscriber,
//		SyncEndpoint: "tcp://10.0.0.7:5556",
//		Topics:       []string{"orders."},
//	}
//	n, err := membership.New(cfg)   // binds and starts gossiping
//	_, err = n.Join(ctx, nil)       // contacts Config.Join
//	go func() {
//		for ev := range n.Events() { // closed by Shutdown/Close
//			...
//		}
//	}()
//	subs := n.Members()             // snapshot, this node included
//	...
//	err = n.Shutdown(ctx)              // announce, leave, shut down
//
// # The caller's duties
//
//   - Give every node a unique NodeName, the same Profile and the same
//     SecretKey (or none). A node with a different key, or without one when
//     the others have one, cannot join: Join returns an error wrapping
//     ErrKeyMismatch.
//   - Advertise endpoints peers can reach ("tcp://10.0.0.7:5556", not
//     "tcp://*:5556"), and keep Meta within MetaMaxSize (512) bytes. A topic
//     list that does not fit is sent as a digest, and peers then treat the
//     node as interested in every topic (Meta.TopicsTruncated).
//   - Read Events promptly, or use Config.OnEvent with a callback that does
//     not block. Events are never allowed to stall gossip: when the queue
//     is full they are dropped and counted (Stats.DroppedEvents); rebuild
//     state from Members when that counter moves. Events concern other
//     members only.
//   - Treat Members as a snapshot. Members whose metadata does not decode
//     (another version, corruption) are left out and reported once per
//     change as EventInvalid.
//   - Call Shutdown on a planned stop, so peers report EventLeave at once
//     instead of EventFailed after the suspicion timeout, and Close (or
//     Shutdown) before exit. Both are idempotent. After Close no goroutine
//     of this package is left; memberlist's last probe ends within one
//     ProbeInterval.
//
// # Shutdown versus failure
//
// memberlist v0.7.0 reports a graceful leave and a failure through the same
// NotifyLeave callback, and the Node.State it passes is never set (it is
// shadowed by an internal field; upstream issue hashicorp/memberlist#293).
// So Shutdown first gossips Meta.Leaving, waits for it to spread, and only then
// leaves; peers report EventLeave for members that announced it and
// EventFailed otherwise. A peer that missed the announcement reports
// EventFailed, the safe side.
//
// # Failure detection timings
//
// Every ProbeInterval each node probes one member (round robin over a
// shuffled list). A member that fails a probe becomes suspect, and is
// declared failed after the suspicion timeout
//
//	SuspicionTimeout    = SuspicionMult × max(1, log10(N)) × ProbeInterval
//	SuspicionMaxTimeout = SuspicionMaxTimeoutMult × SuspicionTimeout
//
// where N is the number of members. The timer starts at the maximum and
// drops to SuspicionTimeout as SuspicionMult−2 other members confirm the
// suspicion (with fewer than that many peers it starts at SuspicionTimeout).
// ProfileTimings and Node.Timings compute these; for clusters of up to 9
// members:
//
//	profile  ProbeInterval  SuspicionTimeout  SuspicionMaxTimeout  typical detection
//	local    1 s            3 s               18 s                 ~5 s
//	lan      1 s            4 s               24 s                 ~6 s
//	wan      5 s            30 s              180 s                ~40 s
//
// Suspicion times double at 100 members. Timings.DetectionMax is a bound for
// tests and alarms on a healthy cluster.
//
// The profiles are memberlist's DefaultLocalConfig, DefaultLANConfig and
// DefaultWANConfig, except that ProfileLocal uses the LAN RetransmitMult of
// 4 instead of 2: with 2, clusters of four or more members regularly leave
// a member unaware of a join, update or leave until the next push/pull sync
// 15 s later.
package membership
