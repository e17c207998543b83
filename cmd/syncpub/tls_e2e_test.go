package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
	"github.com/syncmq/syncmq/internal/testpki"
)

func tlsEndpoint(t testing.TB) string {
	return strings.Replace(clustertest.FreeEndpoint(t), "tcp://", "tls://", 1)
}

// tlsFlags writes leaf and the CA to dir and returns the TLS flags that
// name them.
func tlsFlags(t testing.TB, dir, name string, leaf testpki.Leaf, ca *testpki.CA) []string {
	cert, key := leaf.WriteFiles(t, dir, name)
	return []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca.WriteFile(t, dir, name+"-ca.pem")}
}

// TestTLSJob: syncpub and three syncsub over tls:// with --expect 3 and
// an allow-list file; a syncsub that speaks plain tcp:// to the tls://
// port (no certificate) and one whose certificate the allow-list does not
// name are refused and do not count: the quorum waits for the third good
// subscriber, and the three receive everything. A syncsub given tls://
// endpoints without certificates is a usage error.
func TestTLSJob(t *testing.T) {
	const count = 100_000
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	good := []string{"spiffe://test/sub-1", "spiffe://test/sub-2", "sub-3"}
	allow := filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(allow, []byte("# subscribers of the test\n"+strings.Join(good, "\n")+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pubEP, syncEP := tlsEndpoint(t), tlsEndpoint(t)
	pub := proctest.Start(t, ctx, syncpub, append([]string{"--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", tlsEndpoint(t),
		"--expect", "3", "--count", fmt.Sprint(count), "--allow-file", allow, "--log-level", "info"},
		tlsFlags(t, dir, "pub", ca.Server(t, "publisher"), ca)...)...)

	if p := proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP); p.Wait(ctx) != 2 || !strings.Contains(p.Stderr.String(), "needs TLS") {
		t.Errorf("syncsub on tls:// without certificates: stderr %q, want exit 2 saying it needs TLS", p.Stderr.String())
	}
	plain := proctest.Start(t, ctx, syncsub, "--connect", strings.Replace(pubEP, "tls://", "tcp://", 1),
		"--sync", strings.Replace(syncEP, "tls://", "tcp://", 1), "--id", "sub-3", "--output", "count", "--handshake-timeout", "200ms")
	eve := proctest.Start(t, ctx, syncsub, append([]string{"--connect", pubEP, "--sync", syncEP, "--output", "count"},
		tlsFlags(t, dir, "eve", ca.Client(t, "spiffe://test/eve"), ca)...)...)
	clustertest.WaitFor(t, 30*time.Second, "both refusals in the publisher's log", func() bool {
		log := pub.Stderr.String()
		return strings.Contains(log, "subscriber TLS handshake failed") && strings.Contains(log, "spiffe://test/eve")
	})
	var subs []*proctest.Proc
	for i, id := range good[:2] {
		subs = append(subs, proctest.Start(t, ctx, syncsub, append([]string{"--connect", pubEP, "--sync", syncEP, "--output", "count", "--log-level", "warn"},
			tlsFlags(t, dir, fmt.Sprint("sub", i), ca.Client(t, id), ca)...)...))
	}
	clustertest.WaitFor(t, 30*time.Second, "two subscribers joined", func() bool { return pub.Stderr.Count("subscriber joined") == 2 })
	if log := pub.Stderr.String(); strings.Contains(log, "quorum reached") {
		t.Fatalf("quorum reached with two good subscribers of three:\n%s", log)
	}
	subs = append(subs, proctest.Start(t, ctx, syncsub, append([]string{"--connect", pubEP, "--sync", syncEP, "--output", "count", "--log-level", "warn"},
		tlsFlags(t, dir, "sub2", ca.Client(t, good[2]), ca)...)...))
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	for i, p := range subs {
		if code := p.Wait(ctx); code != 0 || !zguideOK(p.Stdout.String(), count) {
			t.Errorf("syncsub %s exited %d, printed %q, stderr %s", good[i], code, p.Stdout.String(), p.Stderr.String())
		}
	}
	for name, p := range map[string]*proctest.Proc{"plaintext": plain, "eve": eve} {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		p.Wait(ctx)
		if strings.Contains(p.Stdout.String(), fmt.Sprintf("Received %d", count)) || strings.Contains(p.Stderr.String(), "joined publisher") {
			t.Errorf("%s joined: %s", name, p.Stderr.String())
		}
	}
	// Each refused subscriber says why.
	if log := eve.Stderr.String(); !strings.Contains(log, "the server refused this side's certificate") || !strings.Contains(log, "bad certificate") {
		t.Errorf("the refused subscriber's log does not say why:\n%s", log)
	}
	if log := plain.Stderr.String(); !strings.Contains(log, "handshake with the publisher failed") {
		t.Errorf("the plaintext subscriber's log does not say why:\n%s", log)
	}
	if n := pub.Stderr.Count("subscriber joined"); n != 3 {
		t.Errorf("%d joins in the publisher's log, want 3", n)
	}
}

// TestTLSReloadOnHangup: SIGHUP makes syncpub reread its TLS files. A
// broken file is refused and the certificate in force stays; a new CA's
// certificate is taken, the subscriber connected before keeps receiving
// to the end, and a subscriber of the new CA joins.
func TestTLSReloadOnHangup(t *testing.T) {
	const count = 1000
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca1, ca2 := testpki.NewCA(t, "CA one"), testpki.NewCA(t, "CA two")
	pubEP, syncEP := tlsEndpoint(t), tlsEndpoint(t)
	pubFlags := tlsFlags(t, dir, "pub", ca1.Server(t, "publisher"), ca1)
	pub := proctest.Start(t, ctx, syncpub, append([]string{"--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", tlsEndpoint(t),
		"--expect", "1", "--count", fmt.Sprint(count), "--rate", "100", "--log-level", "info"}, pubFlags...)...)
	old := proctest.Start(t, ctx, syncsub, append([]string{"--connect", pubEP, "--sync", syncEP, "--output", "count", "--log-level", "warn"},
		tlsFlags(t, dir, "old", ca1.Client(t, "old"), ca1)...)...)
	clustertest.WaitFor(t, 30*time.Second, "the first subscriber joined", func() bool { return pub.Stderr.Count("subscriber joined") == 1 })

	certFile, keyFile, caFile := pubFlags[1], pubFlags[3], pubFlags[5]
	if err := os.WriteFile(certFile, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = pub.Cmd.Process.Signal(syscall.SIGHUP)
	clustertest.WaitFor(t, 10*time.Second, "the failed reload logged", func() bool { return pub.Stderr.Count("TLS reload failed") == 1 })

	leaf := ca2.Server(t, "publisher")
	for path, data := range map[string][]byte{certFile: leaf.CertPEM, keyFile: leaf.KeyPEM, caFile: ca2.PEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_ = pub.Cmd.Process.Signal(syscall.SIGHUP)
	clustertest.WaitFor(t, 10*time.Second, "the reload logged", func() bool { return pub.Stderr.Count("TLS certificate reloaded") == 1 })
	newSub := proctest.Start(t, ctx, syncsub, append([]string{"--connect", pubEP, "--sync", syncEP, "--output", "count", "--log-level", "warn"},
		tlsFlags(t, dir, "new", ca2.Client(t, "new"), ca2)...)...)
	clustertest.WaitFor(t, 30*time.Second, "the new CA's subscriber joined", func() bool { return pub.Stderr.Count("subscriber joined") == 2 })

	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	if code := old.Wait(ctx); code != 0 || !zguideOK(old.Stdout.String(), count) {
		t.Errorf("the subscriber connected before the reload exited %d, printed %q, stderr %s", code, old.Stdout.String(), old.Stderr.String())
	}
	if code := newSub.Wait(ctx); code != 0 {
		t.Errorf("the new CA's subscriber exited %d: %s", code, newSub.Stderr.String())
	}
}
