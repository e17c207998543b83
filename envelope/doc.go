// Package envelope defines the wire format of every message a syncmq
// publisher sends on its PUB socket.
//
// A message is three ZeroMQ frames:
//
//	frame 0: topic    (what ZeroMQ prefix subscriptions match)
//	frame 1: header   (HeaderSize bytes, big-endian, see Header)
//	frame 2: payload  (raw bytes, or Count length-prefixed records when FlagBatch is set)
//
// docs/protocol.md specifies the layout byte by byte. This package only
// encodes and decodes; it never touches sockets or clocks.
//
// Encoding appends into caller-owned buffers, so a caller that reuses its
// buffers allocates nothing per message. Decoding is zero-copy: a decoded
// Message refers to the frames it was decoded from, so the caller must not
// reuse those frames while it holds the Message.
package envelope
