package wire

import (
	"fmt"
	"net"
	"strings"
)

// Endpoint schemes. tcp:// is ZMTP 3.0 over TCP; tls:// is ZMTP 3.0
// inside TLS 1.3 with mutual certificate authentication (see TLS).
const (
	SchemeTCP = "tcp"
	SchemeTLS = "tls"
)

// ParseEndpoint splits "tcp://host:port" or "tls://host:port" into its
// scheme and "host:port"; "*" as host means every interface.
func ParseEndpoint(ep string) (scheme, addr string, err error) {
	scheme, rest, ok := strings.Cut(ep, "://")
	if !ok || (scheme != SchemeTCP && scheme != SchemeTLS) {
		return "", "", fmt.Errorf("%w: %q: want tcp://host:port or tls://host:port", ErrBadEndpoint, ep)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q: %v", ErrBadEndpoint, ep, err)
	}
	if host == "*" {
		host = ""
	}
	return scheme, net.JoinHostPort(host, port), nil
}

// SplitEndpoint turns "tcp://host:port" or "tls://host:port" into
// "host:port"; "*" as host means every interface.
func SplitEndpoint(ep string) (string, error) {
	_, addr, err := ParseEndpoint(ep)
	return addr, err
}

// IsTLS reports whether ep is a tls:// endpoint.
func IsTLS(ep string) bool { return strings.HasPrefix(ep, SchemeTLS+"://") }

// listen binds endpoint for a Pub or a Server: a tls:// endpoint needs
// t, and a tcp:// one must not have it (a TLS configuration that would be
// silently unused is a mistake, not a choice).
func listen(endpoint string, t *TLS) (net.Listener, string, error) {
	scheme, addr, err := ParseEndpoint(endpoint)
	if err != nil {
		return nil, "", err
	}
	switch {
	case scheme == SchemeTLS && t == nil:
		return nil, "", fmt.Errorf("%w: %q: tls:// needs a TLS configuration", ErrBadEndpoint, endpoint)
	case scheme == SchemeTCP && t != nil:
		return nil, "", fmt.Errorf("%w: %q: a TLS configuration is set; bind tls://", ErrBadEndpoint, endpoint)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("wire: listen %s: %w", endpoint, err)
	}
	return ln, scheme, nil
}
