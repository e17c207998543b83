// Package fetch is the recovery channel's wire format: the FETCH request
// a subscriber sends for a range of a topic's history, and the REPLAY,
// DONE and ERROR responses the publisher sends back. It is a pure codec:
// no sockets, no clock, no allocation beyond the frames it returns.
//
// A subscriber repairs a gap by asking the publisher for the missing
// sequence range over a separate ZeroMQ connection: the subscriber's socket
// is a DEALER, the publisher's a ROUTER that answers on the connection the
// request came in on. No empty delimiter frame is used (there is no REQ/REP
// on this channel), so with pyzmq a client is simply
//
//	s = ctx.socket(zmq.DEALER); s.connect(endpoint)
//	s.send(request_frame)
//	frames = s.recv_multipart()   # one response per call, see below
//
// and the server's ROUTER sees [identity, request_frame] and sends
// [identity, response frames...]. All integers are big-endian (network
// order). Offsets below are byte offsets within the frame.
//
// Request: exactly one frame of 49+n bytes.
//
//	off len field
//	  0   2 magic "SR" (0x53 0x52)
//	  2   1 version, 1
//	  3   1 type: 1 = FETCH
//	  4   4 request id, chosen by the client, echoed in every response frame 0
//	  8  16 publisher id (envelope.ID) the client wants history from
//	 24   8 epoch of that publisher the range belongs to
//	 32   8 from: first sequence wanted, >= 1
//	 40   8 to: last sequence wanted, inclusive, >= from
//	 48   1 n: topic length, 1..255
//	 49   n topic bytes; must not start with a zero byte (data topics only)
//
// No trailing bytes are allowed. How large a range a server serves is the
// server's configuration, not the codec's: a server refuses ranges it
// finds too large with ERROR code 3.
//
// Every response starts with this 8-byte frame 0 header:
//
//	off len field
//	  0   2 magic "SR"
//	  2   1 version, 1
//	  3   1 type: 10 = REPLAY, 11 = DONE, 12 = ERROR
//	  4   4 request id being answered
//
// REPLAY (type 10): 4 frames. Frame 0 is exactly the 8-byte header; frames
// 1..3 are one ordinary envelope message (topic, header, payload; see the
// envelope package) of kind DATA with FlagReplay set. It may be a batch
// (FlagBatch) carrying several consecutive sequences. A server sends zero or
// more REPLAYs in ascending sequence order and then exactly one DONE or
// ERROR, all on the same connection, so they arrive in that order.
//
// DONE (type 11): 1 frame of exactly 33 bytes, ending a FETCH.
//
//	off len field
//	  0   8 header
//	  8   1 status: 0 = complete (every sequence of the range was replayed)
//	                1 = partial (the start of the range is no longer held;
//	                    whatever of the range is held, from "first held"
//	                    on, was replayed)
//	                2 = unknown epoch (the publisher's epoch differs from the
//	                    request's; nothing was replayed)
//	                3 = unknown topic (the publisher holds no history for the
//	                    topic; nothing was replayed)
//	  9   8 first sequence still held for the topic, 0 if none
//	 17   8 last sequence published on the topic (in the current epoch)
//	 25   8 publisher's current epoch
//
// A first held sequence, when not 0, is not above the last sequence.
//
// ERROR (type 12): 1 frame of 10..1034 bytes, ending a FETCH without a DONE.
//
//	off len field
//	  0   8 header
//	  8   2 code: 1 = malformed request, 2 = rate limited, 3 = range too
//	          large, 4 = busy; unknown codes are accepted and mean "failed"
//	 10   m message: UTF-8 text for humans, m <= 1024
//
// A server answers a request it cannot decode with ERROR code 1, echoing
// the request id if the frame starts with a valid 8-byte header (see
// RequestID), else id 0.
package fetch
