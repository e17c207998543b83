package coord

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/syncmq/syncmq/internal/wire"
)

// TLS is the configuration of tls:// endpoints: one certificate with its
// private key, and the pool of CA certificates that verifies peers. One
// TLS serves both roles. A Publisher presents the certificate on every
// endpoint and requires from each subscriber a certificate the pool
// verifies (mutual authentication); a Subscriber presents it and verifies
// the publisher's against the pool and the host it dialed. Only TLS 1.3
// is spoken, and session tickets are off, so every connection verifies a
// certificate afresh.
//
// A peer's identity is read from its verified certificate (see
// CertIdentity), never from what it says in a message: a publisher with
// TLS counts a subscriber in the quorum only under its certificate's
// identity.
//
// Set and Reload swap the configuration atomically: handshakes that
// start afterwards use the new certificate and pool, and connections
// already established keep theirs. All methods are safe for concurrent
// use. Make one with LoadTLS or NewTLS.
type TLS struct {
	w *wire.TLS
}

// LoadTLS reads a certificate (PEM, the leaf first and then any
// intermediates), its private key (PEM) and the CA certificates that
// verify peers (PEM, one or more: during a CA rotation, the old and the
// new) from files. It refuses a certificate outside its validity period.
// Reload reads the same files again.
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	w, err := wire.LoadTLS(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	return &TLS{w: w}, nil
}

// NewTLS returns a configuration that presents cert (its chain and
// private key, as tls.LoadX509KeyPair or tls.X509KeyPair return it) and
// verifies peers against roots, for a service that holds its
// certificates in memory. Set replaces them.
func NewTLS(cert tls.Certificate, roots *x509.CertPool) (*TLS, error) {
	w, err := wire.NewTLS(cert, roots)
	if err != nil {
		return nil, err
	}
	return &TLS{w: w}, nil
}

// Reload reads LoadTLS's files again and swaps the configuration in, for
// a certificate rotation (the commands call it on SIGHUP). On any error
// the configuration in force stays. It fails for a TLS made by NewTLS.
func (t *TLS) Reload() error { return t.w.Reload() }

// Set swaps in cert and roots.
func (t *TLS) Set(cert tls.Certificate, roots *x509.CertPool) error { return t.w.Set(cert, roots) }

// Identity returns the identity the certificate in force names (see
// CertIdentity): what a publisher sees of this process when it connects.
func (t *TLS) Identity() string { return t.w.Identity() }

// Leaf returns the certificate in force.
func (t *TLS) Leaf() *x509.Certificate { return t.w.Leaf() }

// wireTLS returns the transport's configuration; nil for a nil t.
func (t *TLS) wireTLS() *wire.TLS {
	if t == nil {
		return nil
	}
	return t.w
}

// CertIdentity returns the identity a certificate names, the first that
// is present of: its first URI subject alternative name
// ("spiffe://example.org/sub/a"), its first DNS subject alternative
// name, its subject's common name; "" if it names none. A peer whose
// verified certificate names no identity, or one longer than 255 bytes,
// not UTF-8 or with control characters, fails the TLS handshake.
func CertIdentity(c *x509.Certificate) string { return wire.CertIdentity(c) }

// validate refuses a TLS not made by LoadTLS or NewTLS; nil is fine.
func (t *TLS) validate() error {
	if t != nil && t.w == nil {
		return errors.New("tls: not made by LoadTLS or NewTLS")
	}
	return nil
}
