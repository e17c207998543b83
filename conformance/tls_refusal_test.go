package conformance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
	"github.com/syncmq/syncmq/internal/testpki"
)

// zmtpGreeting is the first 64 bytes a ZMTP 3.0 peer sends with the NULL
// mechanism. A client written from the ZMTP spec sends them at once,
// without reading first, and libzmq in parts.
func zmtpGreeting() []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xff, 0x7f, 3, 0
	copy(g[12:], "NULL")
	return g
}

// TestTLSRefusalReachesAClientThatWritesFirst (protocol 1.1 erratum 4): a
// client whose certificate the publisher refuses learns why from the TLS
// alert, even when it sends its ZMTP greeting right after the TLS
// handshake, before reading anything (section 6). Before the publisher
// lingered after its alert, such a client saw a bare EOF or a reset in
// 30-80% of tries: closing with the greeting unread made the kernel
// reset the connection and drop the alert. Every endpoint, every try.
func TestTLSRefusalReachesAClientThatWritesFirst(t *testing.T) {
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir := t.TempDir()
	ca, other := testpki.NewCA(t, "syncmq CA"), testpki.NewCA(t, "another CA")
	cert, key := ca.Server(t, "publisher").WriteFiles(t, dir, "pub")
	allow := filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(allow, []byte("sub-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsEP := func() string { return strings.Replace(clustertest.FreeEndpoint(t), "tcp://", "tls://", 1) }
	eps := map[string]string{"data": tlsEP(), "sync": tlsEP(), "recovery": tlsEP()}
	p := start(t, ctx, syncpub, "--bind", eps["data"], "--sync-bind", eps["sync"], "--recovery-bind", eps["recovery"],
		"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca.WriteFile(t, dir, "ca.pem"), "--allow-file", allow,
		"--expect", "1", "--count", "1", "--log-level", "error")
	clients := map[string]tls.Certificate{
		"another CA":      other.Client(t, "sub-1").Cert,
		"not on the list": ca.Client(t, "sub-2").Cert, // refused on the data endpoint only
	}
	const tries = 40
	for endpoint, ep := range eps {
		addr := strings.TrimPrefix(ep, "tls://")
		waitListening(t, ctx, addr)
		for name, c := range clients {
			if name == "not on the list" && endpoint != "data" {
				continue // sync and recovery answer it with forbidden, after the handshake
			}
			t.Run(endpoint+"/"+name, func(t *testing.T) {
				alerts := 0
				var other []string
				for range tries {
					err := writeFirstThenRead(ctx, addr, c, ca)
					if err != nil && strings.Contains(err.Error(), "remote error: tls: ") {
						alerts++
					} else {
						other = append(other, fmt.Sprint(err))
					}
				}
				if alerts != tries {
					t.Fatalf("%d of %d tries read the alert; the others: %v", alerts, tries, other)
				}
			})
		}
	}
	_ = p.Cmd.Process.Kill()
}

// writeFirstThenRead completes a TLS handshake to addr with cert, sends a
// ZMTP greeting before reading anything, then reads, and returns what
// the read failed with.
func writeFirstThenRead(ctx context.Context, addr string, cert tls.Certificate, ca *testpki.CA) error {
	d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool(), ServerName: "localhost",
		Certificates: []tls.Certificate{cert}}}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("handshake: %w", err) // the client side finishes before the server judges it
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	g := zmtpGreeting()
	for _, part := range [][]byte{g[:10], g[10:12], g[12:]} { // as libzmq sends it: signature, version, the rest
		if _, err := nc.Write(part); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	buf := make([]byte, 64)
	for {
		if _, err := nc.Read(buf); err != nil {
			return err
		}
	}
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	clustertest.WaitFor(t, 30*time.Second, addr+" listening", func() bool {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil || errors.Is(ctx.Err(), context.Canceled)
	})
}
