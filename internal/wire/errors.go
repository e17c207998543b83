package wire

import "errors"

var (
	// ErrClosed is returned by operations on a closed socket, and to
	// callers that were blocked when it closed.
	ErrClosed = errors.New("wire: closed")
	// ErrFrameTooLarge means a peer announced a frame above MaxFrame (or,
	// on a Server, a request above its hard cap).
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrTooManyFrames means a peer sent a message with more than MaxFrames frames.
	ErrTooManyFrames = errors.New("wire: too many frames")
	// ErrTimeout means a request got no reply within its deadline after all retries.
	ErrTimeout = errors.New("wire: request timed out")
	// ErrBadEndpoint means an endpoint is not of the form tcp://host:port or
	// tls://host:port, or its scheme does not fit the TLS configuration.
	ErrBadEndpoint = errors.New("wire: bad endpoint")
	// ErrKicked is the cause (PeerEvent.Err) of a connection closed by Pub.Kick.
	ErrKicked = errors.New("wire: kicked")
	// ErrEvicted is the cause (PeerEvent.Err) of a connection closed to
	// make room for a new one at a connection limit.
	ErrEvicted = errors.New("wire: evicted")
	// ErrTooManySubscriptions is the cause of a connection closed for
	// subscribing more than MaxSubscriptions prefixes.
	ErrTooManySubscriptions = errors.New("wire: too many subscriptions")
	// ErrIdle is the cause of a Server connection closed after IdleTimeout
	// without a request.
	ErrIdle = errors.New("wire: idle connection")
	// ErrSlowConsumer is the cause (PeerEvent.Err, wrapped with the limit
	// it hit) of a connection cut as a slow consumer.
	ErrSlowConsumer = errors.New("wire: slow consumer")
)
