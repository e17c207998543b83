package wire

import (
	"crypto/x509"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxIdentity bounds an identity in bytes. A certificate that names a
// longer one is refused in the TLS handshake: identities end up in logs,
// statistics and the quorum, and a subscriber id has at most 128 bytes.
const MaxIdentity = 255

// errNotAllowed is why a tcp:// connection Allow refused ended.
var errNotAllowed = errors.New("wire: identity not allowed")

// notAllowedError fails the TLS handshake of a client whose certificate
// names an identity Allow refused; the client gets a bad_certificate
// alert.
type notAllowedError struct{ identity string }

func (e *notAllowedError) Error() string {
	return fmt.Sprintf("identity %q is not allowed", truncate(e.identity, 64))
}

// CertIdentity returns the identity a certificate names, the first that
// is present of: its first URI subject alternative name
// ("spiffe://example.org/sub/a"), its first DNS subject alternative name,
// its subject's common name. "" if it names none.
//
// A URI wins because it is the form meant for naming workloads; a DNS
// name comes next because certificates issued for hosts carry one and
// modern verifiers ignore the common name.
func CertIdentity(c *x509.Certificate) string {
	switch {
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	}
	return c.Subject.CommonName
}

// chainIdentity returns the identity of the leaf of the first verified
// chain, refusing one that cannot serve as a name: empty, longer than
// MaxIdentity, not UTF-8 or with control characters.
func chainIdentity(chains [][]*x509.Certificate) (string, error) {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return "", errors.New("no verified client certificate")
	}
	id := CertIdentity(chains[0][0])
	if err := checkIdentity(id); err != nil {
		return "", fmt.Errorf("client certificate %q: %w", truncate(id, 64), err)
	}
	return id, nil
}

func checkIdentity(id string) error {
	if id == "" {
		return errors.New("names no identity (no URI or DNS name, no common name)")
	}
	if len(id) > MaxIdentity {
		return fmt.Errorf("identity of %d bytes, limit %d", len(id), MaxIdentity)
	}
	if !utf8.ValidString(id) {
		return errors.New("identity is not UTF-8")
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return errors.New("identity has control characters")
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
