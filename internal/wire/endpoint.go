package wire

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Endpoint schemes. tcp:// is ZMTP 3.0 over TCP; tls:// is ZMTP 3.0
// inside TLS 1.3 with mutual certificate authentication (see TLS);
// ipc:// is ZMTP 3.0 over a Unix domain socket, whose file's permissions
// say who may connect; inproc:// is a connection inside this process,
// with no socket at all (see docs/transport.md).
const (
	SchemeTCP    = "tcp"
	SchemeTLS    = "tls"
	SchemeIPC    = "ipc"
	SchemeInproc = "inproc"
)

// MaxIPCPath is the longest path an ipc:// endpoint may name: a Unix
// socket address holds 108 bytes, the last of them a NUL.
const MaxIPCPath = 107

// MaxInprocName is the longest name an inproc:// endpoint may have.
const MaxInprocName = 256

// DefaultIPCMode is the permission bits of an ipc:// socket file unless
// the endpoint says otherwise (?mode=0660): only the owner may connect.
const DefaultIPCMode os.FileMode = 0o600

// endpoint is a parsed endpoint.
type endpoint struct {
	scheme string
	// addr is "host:port" for tcp:// and tls://, the socket file's path
	// for ipc://, the name for inproc://.
	addr string
	// mode is the socket file's permission bits (ipc:// only).
	mode os.FileMode
	// modeSet says the endpoint named a mode, which only a bind uses.
	modeSet bool
}

func badEndpoint(ep string, format string, args ...any) error {
	return fmt.Errorf("%w: %q: %s", ErrBadEndpoint, ep, fmt.Sprintf(format, args...))
}

// parseEndpoint parses and checks any endpoint.
func parseEndpoint(ep string) (endpoint, error) {
	scheme, rest, ok := strings.Cut(ep, "://")
	if !ok {
		return endpoint{}, badEndpoint(ep, "want tcp://host:port, tls://host:port, ipc:///path or inproc://name")
	}
	switch scheme {
	case SchemeTCP, SchemeTLS:
		host, port, err := net.SplitHostPort(rest)
		if err == nil {
			err = CheckAddr(rest)
		}
		if err != nil {
			return endpoint{}, badEndpoint(ep, "%v", err)
		}
		if host == "*" {
			host = ""
		}
		return endpoint{scheme: scheme, addr: net.JoinHostPort(host, port)}, nil
	case SchemeIPC:
		return parseIPC(ep, rest)
	case SchemeInproc:
		switch {
		case rest == "":
			return endpoint{}, badEndpoint(ep, "inproc:// needs a name")
		case len(rest) > MaxInprocName:
			return endpoint{}, badEndpoint(ep, "inproc name of %d bytes, at most %d", len(rest), MaxInprocName)
		case strings.ContainsRune(rest, 0):
			return endpoint{}, badEndpoint(ep, "inproc name contains a NUL byte")
		}
		return endpoint{scheme: scheme, addr: rest}, nil
	}
	return endpoint{}, badEndpoint(ep, "unknown scheme %q: want tcp://host:port, tls://host:port, ipc:///path or inproc://name", scheme)
}

// parseIPC parses the part of an ipc:// endpoint after the scheme: a
// path, then optionally "?mode=" and octal permission bits.
func parseIPC(ep, rest string) (endpoint, error) {
	e := endpoint{scheme: SchemeIPC, mode: DefaultIPCMode}
	path, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		v, ok := strings.CutPrefix(query, "mode=")
		if !ok {
			return endpoint{}, badEndpoint(ep, "the only ipc:// option is ?mode=0660 (octal permission bits)")
		}
		m, err := strconv.ParseUint(v, 8, 32)
		switch {
		case err != nil || v == "":
			return endpoint{}, badEndpoint(ep, "mode %q is not octal permission bits like 0600 or 0660", v)
		case m > 0o777:
			return endpoint{}, badEndpoint(ep, "mode %s has bits beyond 0777", v)
		case m&0o600 != 0o600:
			return endpoint{}, badEndpoint(ep, "mode %s must let the owner read and write (0600)", v)
		}
		e.mode, e.modeSet = os.FileMode(m), true
	}
	switch {
	case path == "":
		return endpoint{}, badEndpoint(ep, "ipc:// needs a path, as in ipc:///run/syncmq/data.sock")
	case len(path) > MaxIPCPath:
		return endpoint{}, badEndpoint(ep, "ipc path of %d bytes, at most %d (a Unix socket address holds %d)", len(path), MaxIPCPath, MaxIPCPath+1)
	case strings.ContainsRune(path, 0):
		return endpoint{}, badEndpoint(ep, "ipc path contains a NUL byte")
	case path[0] == '@':
		return endpoint{}, badEndpoint(ep, "abstract Unix sockets (@name) have no file permissions to control access; use a path")
	case path == "*":
		return endpoint{}, badEndpoint(ep, "ipc:// needs a path; * (a random name) is not supported")
	case strings.HasSuffix(path, "/"):
		return endpoint{}, badEndpoint(ep, "ipc path names a directory, not a socket file")
	}
	e.addr = path
	return e, nil
}

// ParseEndpoint splits an endpoint into its scheme and address:
// "tcp://host:port" or "tls://host:port" into "host:port" ("*" as host
// means every interface; the port is a number from 0 to 65535, 0 letting
// the OS choose, for a bind; the host an IP address, a host name, "*" or
// empty); "ipc:///path" into the socket file's path (at most MaxIPCPath
// bytes, optionally followed by ?mode= and octal permission bits for a
// bind, DefaultIPCMode otherwise); "inproc://name" into the name (1 to
// MaxInprocName bytes).
func ParseEndpoint(ep string) (scheme, addr string, err error) {
	e, err := parseEndpoint(ep)
	return e.scheme, e.addr, err
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
// a valid endpoint (ParseEndpoint); on tcp:// and tls:// with a host and
// a port from 1 to 65535; on ipc:// without a mode, which only a bind
// sets.
func CheckDialEndpoint(ep string) error {
	e, err := parseEndpoint(ep)
	if err != nil {
		return err
	}
	switch e.scheme {
	case SchemeIPC:
		if e.modeSet {
			return badEndpoint(ep, "?mode= sets the socket file's permissions when binding; connect to the path alone")
		}
		return nil
	case SchemeInproc:
		return nil
	}
	host, port, _ := net.SplitHostPort(e.addr)
	switch {
	case host == "":
		return badEndpoint(ep, "connect to a host, not to every interface")
	case port == "0":
		return badEndpoint(ep, "port 0 can only be bound, not connected to")
	}
	return nil
}

// SplitEndpoint returns ParseEndpoint's address: "host:port" for tcp://
// and tls:// ("*" as host means every interface), the path for ipc://,
// the name for inproc://.
func SplitEndpoint(ep string) (string, error) {
	_, addr, err := ParseEndpoint(ep)
	return addr, err
}

// IsTLS reports whether ep is a tls:// endpoint.
func IsTLS(ep string) bool { return strings.HasPrefix(ep, SchemeTLS+"://") }

// IsLocal reports whether ep is an ipc:// or inproc:// endpoint: one
// that reaches only this host (ipc) or this process (inproc), has no
// host to resolve and carries no TLS.
func IsLocal(ep string) bool {
	return strings.HasPrefix(ep, SchemeIPC+"://") || strings.HasPrefix(ep, SchemeInproc+"://")
}

// listen binds endpoint for a Pub or a Server: a tls:// endpoint needs
// t, and any other must not have it (a TLS configuration that would be
// silently unused is a mistake, not a choice).
func listen(ep string, t *TLS) (net.Listener, string, error) {
	e, err := parseEndpoint(ep)
	if err != nil {
		return nil, "", err
	}
	switch {
	case e.scheme == SchemeTLS && t == nil:
		return nil, "", badEndpoint(ep, "tls:// needs a TLS configuration")
	case e.scheme != SchemeTLS && t != nil:
		return nil, "", badEndpoint(ep, "a TLS configuration is set; bind tls:// (ipc:// and inproc:// carry no TLS)")
	}
	var ln net.Listener
	switch e.scheme {
	case SchemeIPC:
		ln, err = listenIPC(e.addr, e.mode)
	case SchemeInproc:
		ln, err = listenInproc(e.addr)
	default:
		ln, err = net.Listen("tcp", e.addr)
	}
	if err != nil {
		return nil, "", fmt.Errorf("wire: listen %s: %w", ep, err)
	}
	return ln, e.scheme, nil
}

// endpointOf returns the endpoint to dial a listener bound for scheme.
func endpointOf(scheme string, ln net.Listener) string {
	return scheme + "://" + ln.Addr().String()
}
