package wire

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-zeromq/zmq4"
	"go.uber.org/zap"
)

// ServerConfig configures a Server. Zero fields take the defaults of
// DefaultServerConfig.
type ServerConfig struct {
	// HandshakeTimeout bounds a new connection's ZMTP handshake (and its
	// TLS handshake on tls://). Default 2 s; at least MinHandshakeTimeout.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds writing one reply. Default 2 s; at least
	// MinServerTimeout.
	WriteTimeout time.Duration
	// IdleTimeout closes a connection that sent no complete request for
	// this long after its handshake or its last reply. Default 30 s; at
	// least MinServerTimeout. Clients drop their idle connections before
	// (ClientConfig.IdleClose).
	IdleTimeout time.Duration
	// MaxConns bounds open connections. A new connection beyond it
	// closes the open one idle the longest (no request in flight; in
	// handshake, or since its last reply) and takes its place; it is
	// closed at once only when every open connection is serving a
	// request. Default 1024.
	MaxConns int
	// MaxConnsPerIP bounds the open connections from one source IP
	// address, in the same way: a new one closes the connection from that
	// address idle the longest, or is closed at once if all of them are
	// serving a request. Default 256.
	MaxConnsPerIP int
	// MaxFrame bounds a request frame in bytes. A larger frame is not
	// kept: the handler gets the request marked TooLarge, with the frame
	// cut to its first TooLargeHead bytes, so it can answer with an error.
	// A request of more than 16 × MaxFrame bytes in all closes the
	// connection. Default 64 KiB.
	MaxFrame int
	// MaxFrames bounds the frames of a request as sent, an empty
	// delimiter included; frames beyond it are discarded and the request
	// is marked TooLarge. Default 8.
	MaxFrames int
	// Security is the ZMTP security mechanism; nil means NULL. zmq4's
	// PLAIN server accepts any username and password: it authenticates
	// nobody. Use a tls:// endpoint with TLS for that.
	Security zmq4.Security
	// TLS is the certificate and CA pool of a tls:// endpoint, which
	// requires it; a tcp:// endpoint must leave it nil. Each Request then
	// carries the client's identity (Peer.Identity).
	TLS *TLS
	// Logger receives warnings about refused and misbehaving connections,
	// at most one line per reason per 10 s, and debug lines about closed
	// connections; nil means none.
	Logger *zap.Logger
}

// DefaultServerConfig returns the configuration zero fields default to.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		HandshakeTimeout: DefaultHandshakeTimeout,
		WriteTimeout:     2 * time.Second,
		IdleTimeout:      30 * time.Second,
		MaxConns:         1024,
		MaxConnsPerIP:    256,
		MaxFrame:         64 << 10,
		MaxFrames:        8,
	}
}

func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultServerConfig()
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = d.MaxConnsPerIP
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = d.MaxFrame
	}
	if c.MaxFrames <= 0 {
		c.MaxFrames = d.MaxFrames
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// MinServerTimeout is the smallest ServerConfig.WriteTimeout and
// IdleTimeout: below it, a reply to a healthy client on a busy host
// would time out, or its connection close between two requests.
const MinServerTimeout = 100 * time.Millisecond

// Validate reports every problem of a configuration Serve would refuse:
// negative values and timeouts below their floors.
func (c ServerConfig) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"HandshakeTimeout", int64(c.HandshakeTimeout)}, {"WriteTimeout", int64(c.WriteTimeout)},
		{"IdleTimeout", int64(c.IdleTimeout)}, {"MaxConns", int64(c.MaxConns)},
		{"MaxConnsPerIP", int64(c.MaxConnsPerIP)}, {"MaxFrame", int64(c.MaxFrame)}, {"MaxFrames", int64(c.MaxFrames)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("wire: ServerConfig.%s is negative", f.name))
		}
	}
	errs = append(errs, floor("ServerConfig.HandshakeTimeout", c.HandshakeTimeout, MinHandshakeTimeout),
		floor("ServerConfig.WriteTimeout", c.WriteTimeout, MinServerTimeout),
		floor("ServerConfig.IdleTimeout", c.IdleTimeout, MinServerTimeout))
	return errors.Join(errs...)
}

// hardCap is the request size beyond which a connection closes instead
// of answering TooLarge: 16 × MaxFrame, and at least what MaxFrames full
// frames take.
func (c ServerConfig) hardCap() int64 {
	return int64(max(16, c.MaxFrames+1)) * int64(c.MaxFrame+9)
}
