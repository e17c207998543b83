// Package proctest builds the syncpub and syncsub binaries once per test
// binary and runs them as separate processes, for tests that must cross
// process boundaries the way users run the commands.
package proctest

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds ./cmd/syncpub and ./cmd/syncsub (without -race, as users
// run them) into a temporary directory and returns their paths.
func Binaries(t testing.TB) (syncpub, syncsub string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "syncmq-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binDir, "./cmd/syncpub", "./cmd/syncsub")
		cmd.Dir = root
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = &buildError{err: err, out: out.String()}
		}
	})
	if buildErr != nil {
		t.Fatalf("building commands: %v", buildErr)
	}
	return filepath.Join(binDir, "syncpub"), filepath.Join(binDir, "syncsub")
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// Proc is a running command with captured output.
type Proc struct {
	Cmd    *exec.Cmd
	Stdout Output
	Stderr Output
	done   chan struct{}
	err    error
}

// Output collects what a process writes; it may be read while the process
// is still running.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Count returns how many times s occurs in the output so far.
func (o *Output) Count(s string) int { return strings.Count(o.String(), s) }

// Start runs bin with args; the process is killed when the test ends if
// it is still running.
func Start(t testing.TB, ctx context.Context, bin string, args ...string) *Proc {
	t.Helper()
	return StartEnv(t, ctx, nil, bin, args...)
}

// StartEnv is Start with extra environment variables ("KEY=value").
func StartEnv(t testing.TB, ctx context.Context, env []string, bin string, args ...string) *Proc {
	t.Helper()
	return StartInput(t, ctx, env, nil, bin, args...)
}

// StartInput is StartEnv with stdin read from in (nil: no input).
func StartInput(t testing.TB, ctx context.Context, env []string, in io.Reader, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.CommandContext(ctx, bin, args...), done: make(chan struct{})}
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdin = in
	p.Cmd.Stdout, p.Cmd.Stderr = &p.Stdout, &p.Stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Wait waits for the process to exit and returns its exit code (-1 if it
// was killed by a signal or ctx ended first).
func (p *Proc) Wait(ctx context.Context) int {
	select {
	case <-p.done:
	case <-ctx.Done():
		return -1
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }
