// Package conformance runs real libzmq clients, written in pyzmq from
// docs/protocol.md alone, against syncpub and syncsub: a subscriber
// (subscriber.py), a publisher that serves syncsub including repairs
// (publisher.py), a suite that provokes every error a publisher answers
// (negative.py), and the zguide's own synchronized publisher and
// subscriber (zguide/, and the C originals in internal/libzmqbench)
// against --compat zguide. The Python programs are the spec's reference
// examples.
//
// The tests need /usr/bin/python3 with pyzmq (Debian: python3-zmq). They
// skip without it, except under CI (CI set to 1 or true, or
// SYNCMQ_REQUIRE_LIBZMQ=1), where they fail. The package holds no code
// besides its tests.
package conformance
