// Package fetch is the recovery channel's wire format: the FETCH and
// FETCH_MANY requests a subscriber sends for ranges of a publisher's
// history, and the REPLAY, DONE, DONE_MANY and ERROR responses the
// publisher sends back. It is a pure codec: no sockets, no clock, no
// allocation beyond the frames and slices it returns.
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
// order). Offsets below are byte offsets within the frame. Requests of
// one connection are answered one after the other, in order.
//
// # FETCH (type 1): one frame of exactly 49+n bytes
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
// # FETCH_MANY (type 2): one frame of 34 + sum(17+n_i) bytes, at most 65,536
//
//	off len field
//	  0   8 header as for FETCH, type 2 = FETCH_MANY
//	  8  16 publisher id
//	 24   8 epoch; it applies to every entry
//	 32   2 k: number of entries, 1..1024
//	 34     k entries, back to back, each:
//	          +0   8 from, >= 1
//	          +8   8 to, inclusive, >= from
//	         +16   1 n: topic length, 1..255
//	         +17   n topic bytes; must not start with a zero byte
//
// No trailing bytes are allowed, and the whole frame is at most
// MaxManyRequestSize (65,536) bytes, the recovery server's request frame
// limit: with topics averaging more than 46 bytes, fewer than 1024 entries
// fit. Entries may name different topics and the same topic more than
// once. A server may refuse a FETCH_MANY whose total number of sequences
// (the sum over its entries) it finds too large with ERROR code 3; split
// it.
//
// FETCH_MANY is an addition to version 1, not a new version: a client
// speaking only FETCH never sends it, and a server that predates it cannot
// decode it and answers ERROR code 1 (malformed) echoing the request id. A
// client that gets ERROR 1 for a FETCH_MANY it validated may take that to
// mean "FETCH only" and fall back to one FETCH per entry for that server.
//
// # Responses
//
// Every response starts with this 8-byte frame 0 header:
//
//	off len field
//	  0   2 magic "SR"
//	  2   1 version, 1
//	  3   1 type: 10 = REPLAY, 11 = DONE, 12 = ERROR, 13 = DONE_MANY
//	  4   4 request id being answered
//
// A FETCH is answered with zero or more REPLAYs and then exactly one DONE
// or ERROR; a FETCH_MANY with zero or more REPLAYs and then exactly one
// DONE_MANY or ERROR. All go back on the connection the request came on,
// so they arrive in that order. An ERROR may follow REPLAYs (e.g. when the
// server's replay bandwidth ran out mid-way): what was replayed stands.
//
// REPLAY (type 10): 4 frames. Frame 0 is exactly the 8-byte header; frames
// 1..3 are one ordinary envelope message (topic, header, payload; see the
// envelope package) of kind DATA with FlagReplay set, carrying its topic
// like any envelope. It may be a batch (FlagBatch) carrying several
// consecutive sequences. The server replays retained batches as they were
// published, so a batch that overlaps a requested range is sent whole: its
// records may begin before from and end after to. Every REPLAY holds at
// least one record of a requested range; a receiver drops the records it
// already has. For a FETCH the REPLAYs come in ascending sequence order;
// for a FETCH_MANY entry by entry in request order, each ascending, and a
// batch overlapping two entries may be sent once or twice.
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
//	 17   8 last sequence published on the topic (in the requested epoch)
//	 25   8 publisher's current epoch
//
// A first held sequence, when not 0, is not above the last sequence. A
// DONE never carries status 4: for a FETCH whose range lies wholly above
// the last sequence published it keeps its version 1 meaning, "complete"
// with nothing replayed, so a FETCH client must compare "last sequence"
// with from before believing "complete".
//
// DONE_MANY (type 13): 1 frame of exactly 18 + 17k bytes, ending a
// FETCH_MANY of k entries.
//
//	off len field
//	  0   8 header
//	  8   8 publisher's current epoch
//	 16   2 k: number of entries, equal to the request's, 1..1024
//	 18     k entries, in request order, each:
//	          +0   1 status: 0..3 as for DONE, or
//	                  4 = beyond end (from is above the last sequence
//	                      published on the topic: none of the range exists
//	                      yet; nothing was replayed)
//	          +1   8 first sequence still held for the entry's topic, 0 if none
//	          +9   8 last sequence published on the entry's topic
//
// A range that begins at or below the last sequence published but ends
// above it is answered as the range from..last would be (complete or
// partial); "last" tells the client that the rest does not exist yet.
// When the request's publisher id or epoch is not the server's, every
// entry has status 2.
//
// ERROR (type 12): 1 frame of 10..1034 bytes, ending a FETCH or FETCH_MANY
// without a DONE or DONE_MANY.
//
//	off len field
//	  0   8 header
//	  8   2 code: 1 = malformed request, 2 = rate limited, 3 = range too
//	          large, 4 = busy, 5 = version (protocol 1.1: the request's
//	          version is not the server's, which the ERROR's own version
//	          byte names); unknown codes are accepted and mean "failed"
//	 10   m message: UTF-8 text for humans, m <= 1024
//
// What a client does with an ERROR: 2 and 4, ask again after a backoff
// (recovery.Stream waits 100 ms by default); 3, split the range or the FETCH_MANY and ask again; 1,
// do not repeat the request unchanged (see the FETCH_MANY fallback above).
//
// A server answers a request it cannot decode with ERROR code 1, and one
// of another version with ERROR code 5, echoing the request id if the
// frame starts with the magic and has at least 8 bytes, whatever its
// version byte (see RequestID), else id 0.
package fetch
