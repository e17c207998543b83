package membership

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// validate checks every field of m. Errors wrap ErrMetaTooLarge for fields
// longer than MaxFieldLen and ErrBadMeta for anything else.
func (m Meta) validate() error {
	if !m.Role.Valid() {
		return fmt.Errorf("%w: Role %q, want %q or %q", ErrBadMeta, m.Role, RolePublisher, RoleSubscriber)
	}
	if err := checkText("NodeID", m.NodeID); err != nil {
		return err
	}
	for _, f := range []struct{ name, val string }{
		{"PubEndpoint", m.PubEndpoint},
		{"SyncEndpoint", m.SyncEndpoint},
		{"RecoveryEndpoint", m.RecoveryEndpoint},
	} {
		if err := checkText(f.name, f.val); err != nil {
			return err
		}
		if err := checkEndpoint(f.val); err != nil {
			return fmt.Errorf("%w: %s %q: %s", ErrBadMeta, f.name, f.val, err)
		}
	}
	for i, t := range m.Topics {
		name := "Topics[" + strconv.Itoa(i) + "]"
		switch {
		case t == "":
			return fmt.Errorf("%w: %s is empty (an empty Topics list means all topics)", ErrBadMeta, name)
		case len(t) > MaxFieldLen:
			return fmt.Errorf("%w: %s is %d bytes, max %d", ErrMetaTooLarge, name, len(t), MaxFieldLen)
		case !utf8.ValidString(t):
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadMeta, name)
		}
	}
	return nil
}

// checkText checks a NodeID or endpoint: at most MaxFieldLen bytes of
// UTF-8 without control characters.
func checkText(name, s string) error {
	if len(s) > MaxFieldLen {
		return fmt.Errorf("%w: %s is %d bytes, max %d", ErrMetaTooLarge, name, len(s), MaxFieldLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadMeta, name)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %s contains control character %U", ErrBadMeta, name, c)
		}
	}
	return nil
}

// checkEndpoint checks ZeroMQ endpoint syntax; empty is allowed. The error
// text does not repeat the endpoint.
func checkEndpoint(ep string) error {
	if ep == "" {
		return nil
	}
	if strings.ContainsAny(ep, " \t") {
		return fmt.Errorf("contains whitespace")
	}
	scheme, addr, ok := strings.Cut(ep, "://")
	if !ok {
		return fmt.Errorf("want scheme://address, e.g. tcp://host:5555")
	}
	switch scheme {
	case "tcp", "tls":
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("want %s://host:port: %v", scheme, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return fmt.Errorf("port %q is not in 1-65535", port)
		}
		if host == "*" {
			return fmt.Errorf(`host "*" is a bind address; advertise a host peers can reach`)
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return nil
		}
		if !validHostname(host) {
			return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
		}
		return nil
	case "ipc", "inproc":
		if addr == "" {
			return fmt.Errorf("empty %s address", scheme)
		}
		return nil
	default:
		return fmt.Errorf("scheme %q, want tcp, tls, ipc or inproc", scheme)
	}
}

// validHostname reports whether h is a DNS name: dot-separated labels of
// 1-63 letters, digits, '-' or '_', not starting or ending with '-', the
// last one not all digits (so a malformed IPv4 address is not a name).
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return false
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
