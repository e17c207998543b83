package wire

import (
	"context"

	"github.com/go-zeromq/zmq4"
)

// Peer describes the client connection a request came from.
type Peer struct {
	Remote string
	Type   zmq4.SocketType
	// Identity is the client's identity on a tls:// endpoint: CertIdentity
	// of the certificate its TLS handshake verified, never what it says in
	// a request. "" on tcp://.
	Identity string
}

// Request is one request a Server received.
type Request struct {
	Peer Peer
	// Frames are the request's frames, without the REQ envelope's (or a
	// REQ-emulating DEALER's) empty delimiter. The slice is the handler's;
	// the frame bodies are never reused and may be kept.
	Frames [][]byte
	// TooLarge says the request exceeded MaxFrame or MaxFrames and was not
	// kept whole: an oversized frame holds only its first TooLargeHead
	// bytes and frames beyond MaxFrames are missing. The handler should
	// answer with its protocol's error; reading an id from the head is
	// what the head is for.
	TooLarge bool
	// Size is the total of the frame sizes the peer sent, in bytes.
	Size int64
}

// Handler serves one request. It may call reply any number of times (a
// REQ peer expects exactly one). Returning an error closes the connection.
// Requests of one connection are served one at a time, in order; requests
// of different connections concurrently. ctx ends when the Server closes.
type Handler func(ctx context.Context, req Request, reply func(frames ...[]byte) error) error

// stripDelimiter removes the empty delimiter frame a REQ peer, or a
// DEALER emulating one, puts before its request, and reports whether
// the reply must carry it back. ok is false for a REQ peer without one:
// its state machine is broken.
func stripDelimiter(peerType zmq4.SocketType, frames [][]byte) (_ [][]byte, delimited, ok bool) {
	hasDelim := len(frames) >= 2 && len(frames[0]) == 0
	switch {
	case peerType == zmq4.Req && !hasDelim:
		return frames, false, false
	case hasDelim:
		return frames[1:], true, true
	}
	return frames, false, true
}
