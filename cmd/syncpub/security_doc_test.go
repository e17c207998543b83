package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
	"github.com/syncmq/syncmq/internal/testpki"
)

// docBlock returns the first fenced block of lang after heading in doc.
func docBlock(t *testing.T, doc, heading, lang string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", doc))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)" + regexp.QuoteMeta(heading) + "\\n.*?```" + lang + "\\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/%s has no %s block under %q", doc, lang, heading)
	}
	return string(m[1])
}

// TestPyzmqThroughStunnel: the pyzmq subscriber of conformance/,
// libzmq underneath, joins a tls:// publisher through stunnel configured
// as docs/security.md shows, and receives everything. Skipped without
// stunnel or pyzmq (apt-get install stunnel4 python3-zmq).
func TestPyzmqThroughStunnel(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import zmq").Run(); err != nil {
		t.Skip("python3 with pyzmq not available (apt-get install python3-zmq)")
	}
	stunnel, err := exec.LookPath("stunnel4")
	if err != nil {
		if stunnel, err = exec.LookPath("stunnel"); err != nil {
			t.Skip("stunnel not installed (apt-get install stunnel4)")
		}
	}
	const n = 20_000
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	pubFlags := tlsFlags(t, dir, "pub", ca.Issue(t, testpki.Opts{CommonName: "publisher", DNSNames: []string{"pub.example.org"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}), ca)
	ca.Client(t, "py-1").WriteFiles(t, dir, "py-1")
	ca.WriteFile(t, dir, "ca.crt")

	pubPort, syncPort, dataLocal, syncLocal := clustertest.FreePort(t), clustertest.FreePort(t), clustertest.FreePort(t), clustertest.FreePort(t)
	conf := strings.NewReplacer(
		"pub.example.org:5561", fmt.Sprint("127.0.0.1:", pubPort), "pub.example.org:5562", fmt.Sprint("127.0.0.1:", syncPort),
		"127.0.0.1:15561", fmt.Sprint("127.0.0.1:", dataLocal), "127.0.0.1:15562", fmt.Sprint("127.0.0.1:", syncLocal),
		"= py-1.", "= "+dir+"/py-1.", "= ca.crt", "= "+dir+"/ca.crt",
	).Replace(docBlock(t, "security.md", "## Compared with CURVE", "ini"))
	confPath := filepath.Join(dir, "stunnel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tunnel := proctest.Start(t, ctx, stunnel, confPath)
	sub := proctest.Start(t, ctx, python, filepath.Join("..", "..", "conformance", "subscriber.py"),
		"--pub", fmt.Sprint("tcp://127.0.0.1:", dataLocal), "--sync", fmt.Sprint("tcp://127.0.0.1:", syncLocal), "--id", "py-1")
	pub := proctest.Start(t, ctx, syncpub, append([]string{"--bind", fmt.Sprint("tls://127.0.0.1:", pubPort), "--sync-bind", fmt.Sprint("tls://127.0.0.1:", syncPort),
		"--recovery-bind", tlsEndpoint(t), "--expect", "1", "--count", fmt.Sprint(n), "--log-level", "warn"}, pubFlags...)...)
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s\nstunnel: %s", code, pub.Stderr.String(), tunnel.Stderr.String())
	}
	if code := sub.Wait(ctx); code != 0 {
		t.Fatalf("pyzmq subscriber exited %d: %s", code, sub.Stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(sub.Stdout.String()), "\n")
	if len(lines) != n || lines[0] != "update 1 b'Rhubarb'" || lines[n-1] != fmt.Sprintf("update %d b'Rhubarb'", n) {
		t.Fatalf("pyzmq subscriber printed %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}
