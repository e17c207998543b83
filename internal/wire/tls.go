package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrTLS is the cause of a connection whose TLS handshake failed: the
// peer sent no certificate, one the CA pool does not verify (another CA,
// expired, not for this use), one that names no usable identity, or did
// not speak TLS at all.
var ErrTLS = errors.New("wire: TLS handshake failed")

// TLS is the configuration of tls:// endpoints: one certificate with its
// key, and the pool of CA certificates that verifies peers. It serves
// both roles. A Pub or Server presents the certificate and requires from
// every client a certificate the pool verifies (mutual authentication);
// a Sub or Client presents the certificate and verifies the server's
// against the pool and the host it dialed. Only TLS 1.3 is spoken, and
// session tickets are off, so every connection verifies a certificate
// afresh.
//
// Set and Reload swap the configuration atomically: handshakes that start
// afterwards use the new certificate and pool, and connections already
// established keep going on theirs. All methods are safe for concurrent
// use.
type TLS struct {
	// files are where LoadTLS read the configuration; empty for NewTLS.
	certFile, keyFile, caFile string
	reloadMu                  sync.Mutex // one Reload at a time

	cur    atomic.Pointer[tlsState]
	server *tls.Config // given to tls.Server; picks cur at each handshake
}

// tlsState is one configuration in force.
type tlsState struct {
	cert     tls.Certificate
	identity string
	roots    *x509.CertPool
	server   *tls.Config
}

// NewTLS returns a configuration that presents cert (its chain and
// private key) and verifies peers against roots.
func NewTLS(cert tls.Certificate, roots *x509.CertPool) (*TLS, error) {
	t := &TLS{}
	t.server = &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load().server, nil
		},
	}
	if err := t.Set(cert, roots); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadTLS reads a certificate (PEM, the leaf first and then any
// intermediates), its private key (PEM) and the CA certificates that
// verify peers (PEM, one or more: during a CA rotation, the old and the
// new) from files. It refuses a certificate outside its validity period.
// Reload reads the same files again.
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	cert, roots, err := loadTLSFiles(certFile, keyFile, caFile, time.Now())
	if err != nil {
		return nil, err
	}
	t, err := NewTLS(cert, roots)
	if err != nil {
		return nil, err
	}
	t.certFile, t.keyFile, t.caFile = certFile, keyFile, caFile
	return t, nil
}

// Reload reads LoadTLS's files again and swaps the configuration in, for
// a certificate rotation (the commands call it on SIGHUP). On any error
// the configuration in force stays. Connections already established are
// not touched. It fails for a TLS made by NewTLS.
func (t *TLS) Reload() error {
	if t.certFile == "" {
		return errors.New("wire: TLS was not loaded from files")
	}
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	cert, roots, err := loadTLSFiles(t.certFile, t.keyFile, t.caFile, time.Now())
	if err != nil {
		return err
	}
	return t.Set(cert, roots)
}

// Set swaps in cert and roots.
func (t *TLS) Set(cert tls.Certificate, roots *x509.CertPool) error {
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return errors.New("wire: TLS certificate without its chain or private key")
	}
	if roots == nil {
		return errors.New("wire: TLS needs a CA pool to verify peers")
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return fmt.Errorf("wire: TLS certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	st := &tlsState{cert: cert, identity: CertIdentity(cert.Leaf), roots: roots}
	st.server = &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		ClientCAs:              roots,
		ClientAuth:             tls.RequireAndVerifyClientCert,
		SessionTicketsDisabled: true,
	}
	t.cur.Store(st)
	return nil
}

// Identity returns the identity the certificate in force names (see
// CertIdentity): what a publisher sees of this process when it connects.
func (t *TLS) Identity() string { return t.cur.Load().identity }

// Leaf returns the certificate in force.
func (t *TLS) Leaf() *x509.Certificate { return t.cur.Load().cert.Leaf }

func loadTLSFiles(certFile, keyFile, caFile string, now time.Time) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("wire: TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("wire: TLS certificate %s: %w", certFile, err)
		}
	}
	if now.Before(cert.Leaf.NotBefore) || now.After(cert.Leaf.NotAfter) {
		return tls.Certificate{}, nil, fmt.Errorf("wire: TLS certificate %s is valid from %s to %s only",
			certFile, cert.Leaf.NotBefore.UTC().Format(time.RFC3339), cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("wire: TLS CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("wire: TLS CA %s holds no PEM certificate", caFile)
	}
	return cert, roots, nil
}

// allowing returns a server configuration that also fails the handshake
// of a client whose certificate names no usable identity, or one allow
// refuses (a *notAllowedError): the client learns it from the alert, and
// never gets past the handshake.
func (t *TLS) allowing(allow func(identity string) bool) *tls.Config {
	verify := func(cs tls.ConnectionState) error {
		id, err := chainIdentity(cs.VerifiedChains)
		if err != nil {
			return err
		}
		if !allow(id) {
			return &notAllowedError{identity: id}
		}
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := t.cur.Load().server.Clone()
			c.VerifyConnection = verify
			return c, nil
		},
	}
}

// accept runs the server side of the TLS handshake on an accepted
// connection until deadline, with cfg (t.server, or from allowing), and
// returns the connection to speak ZMTP on and the identity of the
// client's verified certificate. The errors wrap ErrTLS, and a
// *notAllowedError from allowing.
func (t *TLS) accept(nc net.Conn, cfg *tls.Config, deadline time.Time) (net.Conn, string, error) {
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, "", err
	}
	tc := tls.Server(nc, cfg)
	if err := tc.Handshake(); err != nil {
		lingerAfterAlert(nc, err)
		return nil, "", fmt.Errorf("%w: %w", ErrTLS, err)
	}
	id, err := chainIdentity(tc.ConnectionState().VerifiedChains)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrTLS, err)
	}
	return tlsConn{tc}, id, nil
}

// How long, and for how many bytes, a connection whose TLS handshake
// this side refused stays open for its alert to be read.
const (
	alertLinger   = time.Second
	alertDrainMax = 64 << 10
)

// lingerAfterAlert keeps a connection whose TLS handshake failed open
// until the client has read the alert this side sent. In TLS 1.3 a
// client finishes its side before the server judges its certificate, and
// may send its ZMTP greeting at once; closing with that greeting unread
// makes the kernel answer with a reset, which discards the alert before
// the client reads it, and the client sees a bare EOF. So: half-close
// (the alert, then FIN), read and discard what the client still sends
// until it closes, alertLinger passes or alertDrainMax bytes came, then
// let the caller close. A handshake that failed without an alert (the
// client went silent or away) is not waited for.
func lingerAfterAlert(nc net.Conn, err error) {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || (errors.As(err, &ne) && ne.Timeout()) {
		return
	}
	hc, ok := nc.(interface{ CloseWrite() error })
	if !ok || hc.CloseWrite() != nil {
		return
	}
	if nc.SetReadDeadline(time.Now().Add(alertLinger)) != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, nc, alertDrainMax)
}

// dial runs the client side of the TLS handshake on a dialed connection
// to host, within ctx, and returns the connection to speak ZMTP on. In
// TLS 1.3 the server judges the client's certificate after this side
// finished: a refusal arrives as an alert on the first read (see
// explainTLS).
func (t *TLS) dial(ctx context.Context, nc net.Conn, host string) (net.Conn, error) {
	st := t.cur.Load()
	tc := tls.Client(nc, &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    st.roots,
		ServerName: host,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &st.cert, nil // always: the server says why it refuses
		},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTLS, err)
	}
	return tlsConn{tc}, nil
}

// explainTLS marks an error of a TLS client connection's first exchange
// that is the server's alert, the way a refused client certificate
// surfaces in TLS 1.3 ("remote error: tls: certificate required",
// "... unknown certificate authority", "... bad certificate").
func explainTLS(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return fmt.Errorf("%w: the server refused this side's certificate: %v", ErrTLS, err)
	}
	return err
}

// tlsConn is a TLS connection whose Close closes the TCP connection at
// once. tls.Conn.Close first sends a close_notify alert, which can block
// for seconds on a peer that reads nothing, and wire closes connections
// from paths that must not block (a slow consumer cut from Send).
// CloseWrite is the orderly end: close_notify, then a TCP half-close.
type tlsConn struct{ *tls.Conn }

func (c tlsConn) Close() error { return c.NetConn().Close() }

func (c tlsConn) CloseWrite() error {
	err := c.Conn.CloseWrite()
	if tc, ok := c.NetConn().(*net.TCPConn); ok {
		if werr := tc.CloseWrite(); err == nil {
			err = werr
		}
	}
	return err
}

// target is an endpoint a Sub or Client dials.
type target struct {
	scheme string
	addr   string // host:port; the path for ipc://, the name for inproc://
	host   string // what the server's certificate must name (tls:// only)
	tls    *TLS   // nil but for tls://
}

func newTarget(ep string, t *TLS) (target, error) {
	e, err := parseEndpoint(ep)
	if err != nil {
		return target{}, err
	}
	switch e.scheme {
	case SchemeTLS:
		if t == nil {
			return target{}, badEndpoint(ep, "tls:// needs a TLS configuration")
		}
		host, _, _ := net.SplitHostPort(e.addr)
		return target{scheme: e.scheme, addr: e.addr, host: host, tls: t}, nil
	case SchemeIPC, SchemeInproc:
		if t != nil {
			return target{}, badEndpoint(ep, "a TLS configuration is set; ipc:// and inproc:// carry no TLS")
		}
	}
	// On tcp:// a TLS configuration goes unused: a Sub may reach
	// publishers on both schemes.
	return target{scheme: e.scheme, addr: e.addr}, nil
}

// dial connects to the target, within ctx. batches (a Sub that reads in
// place) asks an inproc:// publisher for the batch lane.
func (tg target) dial(ctx context.Context, batches bool) (net.Conn, error) {
	var d net.Dialer
	switch tg.scheme {
	case SchemeIPC:
		return d.DialContext(ctx, "unix", tg.addr)
	case SchemeInproc:
		return dialInproc(tg.addr, batches)
	}
	return d.DialContext(ctx, "tcp", tg.addr)
}

// secure runs the TLS handshake on a dialed connection to a tls://
// target, within ctx; on tcp:// it returns nc.
func (tg target) secure(ctx context.Context, nc net.Conn) (net.Conn, error) {
	if tg.tls == nil {
		return nc, nil
	}
	return tg.tls.dial(ctx, nc, tg.host)
}
