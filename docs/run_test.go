package docs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	workCopy  string // a copy of the repository with syncpub and syncsub built at its root
	buildErr  error
)

// goEnv is the environment of the blocks' go commands: -trimpath makes
// the build cache serve a copy of the repository in any directory, so a
// block's "go build -o . ./cmd/..." only links.
var goEnv = []string{"GOFLAGS=-trimpath", "GOPROXY=off", "GOTOOLCHAIN=local"} // buildDir adds the caches

// buildDir returns a copy of the repository, without .git, with syncpub
// and syncsub built at its root (as README.md's go build line builds
// them); blocks run in copies of it. It is made once per test binary.
func buildDir(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root := repoRoot(t)
		workCopy, buildErr = os.MkdirTemp("", "syncmq-doc-")
		if buildErr != nil {
			return
		}
		if buildErr = copyTree(root, workCopy); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "env", "GOPATH", "GOMODCACHE", "GOCACHE").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env: %v", err)
			return
		}
		// The blocks get a HOME of their own; the go command must still
		// find the module and build caches where they are.
		for i, v := range strings.Fields(string(out)) {
			goEnv = append(goEnv, []string{"GOPATH=", "GOMODCACHE=", "GOCACHE="}[i]+v)
		}
		cmd := exec.Command("go", "build", "-o", ".", "./cmd/syncpub", "./cmd/syncsub")
		cmd.Dir, cmd.Env = workCopy, append(os.Environ(), goEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return workCopy
}

// copyTree copies the regular files under src to dst, keeping modes,
// except .git and binaries built at the root.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		switch {
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules"):
			return filepath.SkipDir
		case rel == "syncpub" || rel == "syncsub":
			return nil
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(filepath.Join(dst, rel), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// isolation says how blocks are kept apart: in network namespaces of
// their own (unshare), or by taking turns.
var (
	isoOnce  sync.Once
	isolated bool
)

func netnsAvailable() bool {
	isoOnce.Do(func() {
		if _, err := exec.LookPath("ip"); err != nil || os.Getenv("SYNCMQ_DOCTEST_SHARED_LOOPBACK") != "" {
			return
		}
		isolated = exec.Command("unshare", "--user", "--map-root-user", "--net", "--", "ip", "link", "set", "lo", "up").Run() == nil
	})
	return isolated
}

// turn serialises blocks that share the host's loopback, across test
// binaries too: they bind the documented fixed ports.
var turnMu sync.Mutex

func takeTurn(t *testing.T) (release func()) {
	t.Helper()
	turnMu.Lock()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "syncmq-doc-blocks.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		turnMu.Unlock()
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		turnMu.Unlock()
		t.Fatal(err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		turnMu.Unlock()
	}
}

// prelude makes a failure in a block visible, as a terminal would show
// it: every failing command is reported (the ERR trap), wait reports a
// background job that failed (unless a signal ended it: the block killed
// it), and a job still running at the end is a failure.
const prelude = `__doctest_failed=0
trap '__doctest_rc=$?; echo "doctest: exit status $__doctest_rc: $BASH_COMMAND" >&2; __doctest_failed=1' ERR
wait() {
  if [ $# -gt 0 ]; then builtin wait "$@"; return $?; fi
  local j r rc=0
  for j in $(jobs -p); do
    builtin wait "$j"; r=$?
    if [ "$r" -ne 0 ] && [ "$r" -le 128 ]; then echo "doctest: a background job exited $r" >&2; rc=$r; fi
  done
  return $rc
}
`

const epilogue = `
if [ -n "$(jobs -pr)" ]; then echo "doctest: jobs still running at the end of the block" >&2; kill -9 $(jobs -pr) 2>/dev/null; __doctest_failed=1; fi
exit $__doctest_failed
`

// maxParallel bounds the blocks run at once: they bind fixed ports in
// namespaces of their own, but share two cores with the other tests.
const maxParallel = 4

// TestShellBlocks runs every runnable shell block of README.md and
// docs/*.md as docs/doc.go describes.
func TestShellBlocks(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	blocks := allBlocks(t)
	dir := buildDir(t)
	commandFlags(t) // build the flag sets before the parallel subtests
	var units [][]block
	for _, b := range blocks {
		if !b.runnable() || b.skip != "" {
			continue
		}
		if b.continues && len(units) > 0 {
			units[len(units)-1] = append(units[len(units)-1], b)
			continue
		}
		units = append(units, []block{b})
	}
	if len(units) < 8 {
		t.Fatalf("only %d runnable blocks", len(units))
	}
	if !netnsAvailable() {
		t.Log("no network namespaces here: blocks take turns on the host's loopback")
	}
	slots := make(chan struct{}, maxParallel)
	for _, unit := range units {
		t.Run(unit[0].String(), func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			for _, tool := range []string{"curl", "openssl"} {
				for _, b := range unit {
					if strings.Contains(b.text, tool+" ") {
						if _, err := exec.LookPath(tool); err != nil {
							t.Skipf("%s is not installed", tool)
						}
					}
				}
			}
			if !netnsAvailable() {
				defer takeTurn(t)()
			}
			wd := t.TempDir()
			if err := copyTree(dir, wd); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"syncpub", "syncsub"} {
				if err := os.Link(filepath.Join(dir, f), filepath.Join(wd, f)); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range unit {
				for i := range b.repeat {
					out, err := runBlock(wd, dir, b)
					if err == nil {
						err = b.checkOutput(out)
					}
					if err != nil {
						t.Fatalf("%v (run %d of %d): %v\n--- block\n%s--- output (last 6000 bytes)\n%s", b, i+1, b.repeat, err, b.script(), tailBytes(out, 6000))
					}
				}
			}
		})
	}
}

// runBlock runs b in wd, with the binaries of binDir first on PATH, and
// returns its output (stdout and stderr together).
func runBlock(wd, binDir string, b block) (string, error) {
	script := filepath.Join(wd, fmt.Sprintf(".doctest-%d.sh", b.line))
	if err := os.WriteFile(script, []byte(prelude+b.script()+epilogue), 0o644); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	var cmd *exec.Cmd
	if netnsAvailable() {
		cmd = exec.Command("unshare", "--user", "--map-root-user", "--net", "--",
			"bash", "--noprofile", "--norc", "-c", `ip link set lo up && exec bash --noprofile --norc "$0"`, script)
	} else {
		cmd = exec.Command("bash", "--noprofile", "--norc", script)
	}
	cmd.Dir = wd
	cmd.Env = append(os.Environ(), goEnv...)
	cmd.Env = append(cmd.Env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+wd, "TERM=dumb")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("still running after %v", b.timeout)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever it left behind
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("a command failed (see doctest: lines below)")
	}
	return out.String(), err
}

// checkOutput matches the block's expectations against its output.
func (b block) checkOutput(out string) error {
	var missing []string
	for _, e := range b.expects {
		if n := len(e.re.FindAllStringIndex(out, -1)); n < e.n {
			missing = append(missing, fmt.Sprintf("%d of %d lines matching %s", n, e.n, strings.TrimPrefix(e.re.String(), "(?m)")))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the output has only %s", strings.Join(missing, "; "))
	}
	return nil
}

func tailBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// TestBlockFailuresAreSeen: a block fails when a foreground command
// fails, when a background job collected by wait failed, and when a job
// is still running at its end; a job the block killed, and a command
// tested in a condition, are not failures.
func TestBlockFailuresAreSeen(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	wd := t.TempDir()
	for script, fails := range map[string]bool{
		"true\n":                                    false,
		"false\necho after\n":                       true,
		"(exit 3) &\nwait\n":                        true,
		"sleep 30 &\n":                              true,
		"sleep 30 &\nkill -9 %1\nwait\n":            false,
		"until true; do sleep 1; done\n":            false,
		"if false; then :; fi\n":                    false,
		"echo x | grep -q y\n":                      true,
		"printf 'a\\nb\\n' | grep '^b$' >/dev/null": false,
	} {
		b := block{file: "t.md", line: 1, lang: "sh", text: script, repeat: 1, timeout: 20 * time.Second}
		out, err := runBlock(wd, wd, b)
		if (err != nil) != fails {
			t.Errorf("%q: err %v, want failure %v; output:\n%s", script, err, fails, out)
		}
	}
}
