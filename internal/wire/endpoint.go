package wire

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Endpoint schemes. tcp:// is ZMTP 3.0 over TCP; tls:// is ZMTP 3.0
// inside TLS 1.3 with mutual certificate authentication (see TLS).
const (
	SchemeTCP = "tcp"
	SchemeTLS = "tls"
)

// ParseEndpoint splits "tcp://host:port" or "tls://host:port" into its
// scheme and "host:port"; "*" as host means every interface. The port
// must be a number from 0 to 65535 (0: the OS chooses, for a bind) and
// the host an IP address, a host name, "*" or empty.
func ParseEndpoint(ep string) (scheme, addr string, err error) {
	scheme, rest, ok := strings.Cut(ep, "://")
	if !ok || (scheme != SchemeTCP && scheme != SchemeTLS) {
		return "", "", fmt.Errorf("%w: %q: want tcp://host:port or tls://host:port", ErrBadEndpoint, ep)
	}
	host, port, err := net.SplitHostPort(rest)
	if err == nil {
		err = CheckAddr(rest)
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: %q: %v", ErrBadEndpoint, ep, err)
	}
	if host == "*" {
		host = ""
	}
	return scheme, net.JoinHostPort(host, port), nil
}

// CheckAddr checks a "host:port" as ParseEndpoint checks an endpoint's:
// a port from 0 to 65535, and a host that is an IP address, a host name,
// "*" or empty. Its errors say what is wrong, without naming addr.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host == "*" {
		return nil
	}
	return checkHost(host)
}

// checkHost accepts an empty host (every interface), an IP address (an
// IPv6 one may carry a zone) and a host name of letters, digits, hyphens
// and underscores in dot-separated labels of 1 to 63 bytes. A name made
// only of digits and dots must be a valid IPv4 address, so 256.1.1.1 is
// refused here rather than by a name lookup at bind time.
func checkHost(host string) error {
	if host == "" {
		return nil
	}
	ip, _, _ := strings.Cut(host, "%")
	if net.ParseIP(ip) != nil {
		return nil
	}
	if strings.Trim(host, "0123456789.") == "" {
		return fmt.Errorf("host %q is not an IPv4 address", host)
	}
	if len(host) > 253 {
		return fmt.Errorf("host name of %d bytes, at most 253", len(host))
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("host %q: labels are 1 to 63 bytes", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("host %q: %q is not a letter, digit, hyphen or underscore", host, r)
			}
		}
	}
	return nil
}

// CheckDialEndpoint reports whether ep is an endpoint one can connect to:
// a valid endpoint (ParseEndpoint) with a host and a port from 1 to
// 65535.
func CheckDialEndpoint(ep string) error {
	_, addr, err := ParseEndpoint(ep)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(addr)
	switch {
	case host == "":
		return fmt.Errorf("%w: %q: connect to a host, not to every interface", ErrBadEndpoint, ep)
	case port == "0":
		return fmt.Errorf("%w: %q: port 0 can only be bound, not connected to", ErrBadEndpoint, ep)
	}
	return nil
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
