package wire

import "errors"

var (
	// ErrClosed is returned by operations on a closed socket.
	ErrClosed = errors.New("wire: closed")
	// ErrFrameTooLarge means a peer announced a frame above MaxFrame.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrTooManyFrames means a peer sent a message with more than MaxFrames frames.
	ErrTooManyFrames = errors.New("wire: too many frames")
	// ErrTimeout means a request got no reply within its deadline after all retries.
	ErrTimeout = errors.New("wire: request timed out")
	// ErrBadEndpoint means an endpoint is not of the form tcp://host:port.
	ErrBadEndpoint = errors.New("wire: bad endpoint")
)
