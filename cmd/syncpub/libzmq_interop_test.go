package main

import (
	"context"
	"fmt"
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
)

// TestPyzmqSubscriberFromSpec runs the pyzmq subscriber printed in
// docs/protocol.md, unchanged but for its ports, against syncpub. It is
// libzmq on the other end, so it shows both that the spec is precise
// enough and that our ZMTP is the real thing. Skipped where python3 has
// no zmq module (CI installs Debian's python3-zmq).
func TestPyzmqSubscriberFromSpec(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import zmq").Run(); err != nil {
		t.Skip("python3 with pyzmq not available (apt-get install python3-zmq)")
	}
	_, file, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## 3\\. A minimal pyzmq subscriber\\n\\n```python\\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/protocol.md has no pyzmq subscriber section")
	}
	pubPort, syncPort := clustertest.FreePort(t), clustertest.FreePort(t)
	script := strings.NewReplacer("localhost:5561", fmt.Sprint("127.0.0.1:", pubPort), "localhost:5562", fmt.Sprint("127.0.0.1:", syncPort)).Replace(string(m[1]))
	path := filepath.Join(t.TempDir(), "sub.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 20_000
	sub := proctest.Start(t, ctx, python, path)
	pub := proctest.Start(t, ctx, syncpub, "--bind", clustertest.Endpoint(pubPort), "--sync-bind", clustertest.Endpoint(syncPort),
		"--recovery-bind", clustertest.FreeEndpoint(t), "--expect", "1", "--count", fmt.Sprint(n), "--log-level", "warn")
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	if code := sub.Wait(ctx); code != 0 {
		t.Fatalf("pyzmq subscriber exited %d: %s", code, sub.Stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(sub.Stdout.String()), "\n")
	if len(lines) != n || lines[0] != "update 1 b'Rhubarb'" || lines[n-1] != fmt.Sprintf("update %d b'Rhubarb'", n) {
		t.Fatalf("pyzmq subscriber printed %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}
