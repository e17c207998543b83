// Package relay is a fan-out tier between a publisher and its
// subscribers: a Relay joins one upstream publisher as a subscriber and
// serves the same stream downstream as a publisher, under the upstream
// publisher's id and epoch, with its topics and sequence numbers
// unchanged. Downstream subscribers cannot tell a relay from the origin,
// except that they repair from the relay's history, and that a relay
// reports a range lost upstream with its original cause (a LOSS control
// message, docs/protocol.md section 1.6).
//
// The relay's life, in order (docs/relay.md has the picture):
//
//  1. It reads one HELLO from the upstream data endpoint to learn the
//     publisher id and epoch it will serve, and binds its downstream
//     endpoints under them.
//  2. It waits for its own downstream quorum (PublisherConfig.Expect),
//     then joins upstream, where it counts as one subscriber: an origin's
//     Expect counts relays, each of which holds its READY until its own
//     quorum is there.
//  3. Every record delivered upstream is forwarded with its sequence: a
//     DATA or MULTI message that arrived live and in order whole, as it
//     came (coord.Event.Data, coord.Publisher.Forward), other records one
//     by one (coord.Publisher.PublishSeq); a range reported lost upstream
//     is skipped with its cause (coord.Publisher.PublishLoss), so
//     downstream subscribers report the same range with the same cause.
//     The relay keeps its own history and answers its subscribers'
//     FETCHes; its own gaps it repairs upstream.
//  4. At the upstream END it ends downstream (END, then it waits for
//     every downstream subscriber's BYE), and only then confirms upstream
//     with its own BYE, which carries what downstream did not confirm as
//     lost (coord.Subscriber.HoldBye).
//
// When the upstream publisher restarts (a new epoch) before its END, the
// relay closes downstream without END and goes through 1-4 again for the
// new epoch, on the same downstream endpoints: its subscribers see the
// restart as they would have seen the origin's.
//
// Run returns nil only when upstream ended cleanly and every downstream
// subscriber that joined confirmed everything.
package relay
