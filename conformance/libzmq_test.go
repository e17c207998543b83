package conformance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/proctest"
)

// python is the interpreter that has Debian's python3-zmq.
const python = "/usr/bin/python3"

// required reports whether libzmq tests must run rather than skip: in CI.
func required() bool {
	ci := strings.ToLower(os.Getenv("CI"))
	return ci == "1" || ci == "true" || os.Getenv("SYNCMQ_REQUIRE_LIBZMQ") == "1"
}

// needPyzmq skips the test without pyzmq, or fails it where it is required.
func needPyzmq(t *testing.T) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import zmq").CombinedOutput()
	if err == nil {
		return
	}
	msg := "libzmq conformance tests need " + python + " with pyzmq (apt-get install python3-zmq): " + strings.TrimSpace(string(out))
	if required() {
		t.Fatal(msg + "; CI requires them (CI or SYNCMQ_REQUIRE_LIBZMQ is set)")
	}
	t.Skip(msg)
}

// dir is this package's folder, where the Python programs are.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// script returns the path of a program of this package.
func script(name string) string { return filepath.Join(dir(), name) }

// cZguide builds the zguide's C syncpub and syncsub from
// internal/libzmqbench, or returns "" where cc or libzmq's headers are
// missing (the pyzmq ports stand in).
func cZguide(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("sh", filepath.Join(dir(), "..", "internal", "libzmqbench", "build.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Logf("the zguide's C programs are not built (%v: %s); the pyzmq ports stand in", err, strings.TrimSpace(string(b)))
		return ""
	}
	return out
}

// start runs a command and fails the test when ctx ends before it exits.
func start(t *testing.T, ctx context.Context, bin string, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, ctx, bin, args...)
}

// wait waits for p and fails unless it exits with want.
func wait(t *testing.T, ctx context.Context, name string, p *proctest.Proc, want int) {
	t.Helper()
	if code := p.Wait(ctx); code != want {
		t.Fatalf("%s exited %d, want %d\nstdout (tail): %s\nstderr: %s", name, code, want, tail(p.Stdout.String(), 2000), tail(p.Stderr.String(), 4000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// timeout is how long one conformance run may take on a busy machine.
const timeout = 3 * time.Minute
