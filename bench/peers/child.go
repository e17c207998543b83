package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// line is one line a child printed, stamped when the bench read it.
type line struct {
	at   time.Time
	text string
}

// Bounds on what is kept of a child's output: readiness and result lines
// come first or last, the rest is only for diagnosing a failure.
const (
	maxKeptLines = 1000
	tailLines    = 20
)

// child is a process the bench started, with its output read line by
// line as it comes (so a waiting bench never blocks the child's pipes)
// and, when asked, its peak RSS sampled while it runs.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	out     []line // stdout, first maxKeptLines
	errHead []line // stderr, first maxKeptLines
	errTail []string
	changed chan struct{} // closed and replaced on every new line and at exit
	exited  bool
	waitErr error

	done chan struct{}
	// started is just before the exec, exitedAt when the exit was
	// reaped, cpu the user and system time the exit status reports (all
	// set before done is closed, except started).
	started  time.Time
	exitedAt time.Time
	cpu      time.Duration
	// hwmKiB is the highest VmHWM read. The exit status's ru_maxrss is
	// no substitute: Linux folds into it the high-water mark of the memory
	// the child had before exec, which after Go's vfork-style clone is
	// this bench's own.
	hwmKiB atomic.Int64
}

type childOptions struct {
	stdin bool // give the child a stdin pipe (else /dev/null)
	// pollRSS samples /proc/<pid>/status VmHWM every this long while it
	// runs; zero does not.
	pollRSS time.Duration
	env     []string // added to the bench's environment
}

// startChild starts bin with args. The child is killed if the bench dies.
func startChild(name, bin string, args []string, o childOptions) (*child, error) {
	c := &child{name: name, changed: make(chan struct{}), done: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd.Env = append(append(os.Environ(), childEnv+"=1"), o.env...)
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if o.stdin {
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	c.started = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); c.read(stdout, false) }()
	go func() { defer readers.Done(); c.read(stderr, true) }()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		err := c.cmd.Wait()
		at := time.Now()
		c.mu.Lock()
		c.exited, c.waitErr, c.exitedAt = true, err, at
		if ps := c.cmd.ProcessState; ps != nil {
			c.cpu = ps.UserTime() + ps.SystemTime()
		}
		c.notifyLocked()
		c.mu.Unlock()
		close(c.done)
	}()
	if o.pollRSS > 0 {
		go c.pollHWM(o.pollRSS)
	}
	return c, nil
}

func (c *child) read(r io.Reader, isErr bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := line{at: time.Now(), text: sc.Text()}
		c.mu.Lock()
		switch {
		case !isErr && len(c.out) < maxKeptLines:
			c.out = append(c.out, l)
		case isErr && len(c.errHead) < maxKeptLines:
			c.errHead = append(c.errHead, l)
		}
		if isErr {
			c.errTail = append(c.errTail, l.text)
			if len(c.errTail) > tailLines {
				c.errTail = c.errTail[1:]
			}
		}
		c.notifyLocked()
		c.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r) // a line over 1 MiB: keep draining
}

func (c *child) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitLine blocks until the child printed a line (on stderr if fromErr)
// containing substr and returns it; it fails if the child exits first or
// ctx ends.
func (c *child) waitLine(ctx context.Context, fromErr bool, substr string) (line, error) {
	for {
		c.mu.Lock()
		lines := c.out
		if fromErr {
			lines = c.errHead
		}
		for _, l := range lines {
			if strings.Contains(l.text, substr) {
				c.mu.Unlock()
				return l, nil
			}
		}
		exited, ch := c.exited, c.changed
		c.mu.Unlock()
		if exited {
			return line{}, fmt.Errorf("%s exited (%v) before printing %q%s", c.name, c.exitErr(), substr, c.stderrTail())
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return line{}, fmt.Errorf("%s: waiting for %q: %w%s", c.name, substr, context.Cause(ctx), c.stderrTail())
		}
	}
}

func (c *child) exitErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitErr
}

// stderrTail formats the last lines the child wrote to stderr, for errors.
func (c *child) stderrTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errTail) == 0 {
		return ""
	}
	return "; its stderr ends:\n  " + strings.Join(c.errTail, "\n  ")
}

// stderrLines returns the kept stderr lines that contain substr.
func (c *child) stderrLines(substr string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.errHead {
		if strings.Contains(l.text, substr) {
			out = append(out, l.text)
		}
	}
	return out
}

// send writes one line to the child's stdin.
func (c *child) send(s string) error {
	_, err := io.WriteString(c.stdin, s+"\n")
	return err
}

// wait blocks until the child exits or ctx ends (then kills it), and
// returns its exit error.
func (c *child) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.exitErr()
	case <-ctx.Done():
		c.kill()
		return fmt.Errorf("%s: %w%s", c.name, ctx.Err(), c.stderrTail())
	}
}

// kill stops the child now, if it still runs, and waits for it. Idempotent.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	if c.stdin != nil {
		_ = c.stdin.Close()
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// peakRSSKiB is the child's peak resident set in KiB: its VmHWM, read now
// if it still runs, else the highest value seen.
func (c *child) peakRSSKiB() int64 {
	select {
	case <-c.done:
	default:
		if v, err := readHWM(c.cmd.Process.Pid); err == nil {
			c.raiseHWM(v)
		}
	}
	return c.hwmKiB.Load()
}

func (c *child) raiseHWM(v int64) {
	for {
		old := c.hwmKiB.Load()
		if v <= old || c.hwmKiB.CompareAndSwap(old, v) {
			return
		}
	}
}

// How often a polled child's VmHWM is read. VmHWM only grows, so only
// growth in the child's last interval before it exits can be missed (its
// memory, and VmHWM with it, is gone once it exited). Subscribers, up to
// a hundred processes, are read less often so that the bench's own reads
// stay a small load; their memory grows at the start of a run, not in
// its last tenth of a second.
const (
	rssPollInterval    = 10 * time.Millisecond
	subRSSPollInterval = 100 * time.Millisecond
)

func (c *child) pollHWM(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if v, err := readHWM(c.cmd.Process.Pid); err == nil {
				c.raiseHWM(v)
			}
		}
	}
}

// readHWM returns VmHWM (peak resident set, KiB) from /proc/<pid>/status.
func readHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM")
}

// cpuTime is the user and system time of the exited child; zero while it
// runs.
func (c *child) cpuTime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cpu
}

// exitTime is when the child's exit was reaped; zero while it runs.
func (c *child) exitTime() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exitedAt
}

// cpuNow reads the running child's user and system time so far from
// /proc/<pid>/stat, in clock ticks of 10 ms.
func (c *child) cpuNow() (time.Duration, error) {
	return procCPU(c.cmd.Process.Pid)
}

// clockTick is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on
// every Linux the bench runs on.
const clockTick = 10 * time.Millisecond

// procCPU returns utime + stime of pid from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15
	// of the whole line, 12 and 13 after the name.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(u+s) * clockTick, nil
}

// stopGrace bounds a graceful stop (stdin closed) before the kill.
const stopGrace = 10 * time.Second

// stop asks a child that reads stdin to end by closing it, and kills it
// if it has not exited within stopGrace. Idempotent.
func (c *child) stop() {
	if c.stdin != nil {
		_ = c.stdin.Close()
		select {
		case <-c.done:
			return
		case <-time.After(stopGrace):
		}
	}
	c.kill()
}

// killAll kills every child that still runs.
func killAll(cs ...*child) {
	for _, c := range cs {
		if c != nil {
			c.kill()
		}
	}
}
