package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run the zguide job as separate processes and report wall time, throughput and memory",
		Long: `bench runs the zguide synchronized-publisher job on loopback, each node a
separate process, with syncpub/syncsub. It prints wall time, deliveries per
second, peak RSS per process and loss. With --raw it also runs a
line-by-line go-zeromq port of the zguide's programs (including its 1 s
subscriber sleep) and prints the ratio; that baseline is slow (about four
minutes for 10 x 1,000,000). With --libzmq it also runs the zguide's C
programs on libzmq, in the same run. syncsub must be next to syncpub or on
PATH (go build -o . ./cmd/syncpub ./cmd/syncsub). With --tls it also runs
the syncmq job over tls://, with certificates of a throwaway CA written to
a temporary directory. The processes' output is captured and shown only
for a process that fails.`,
		Args:          cli.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := settings.DefaultBench()
			if _, err := cli.Load(cmd, settings.PublisherPrefix, &s); err != nil {
				return err
			}
			if s.Subscribers < 1 {
				return cli.Usagef("subscribers: need at least 1")
			}
			o := benchOptions{subs: s.Subscribers, count: s.Count, payload: s.Payload, raw: s.Raw,
				timeout: s.Timeout, syncsub: s.Syncsub, libzmq: s.Libzmq, tls: s.TLS}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBench(ctx, o)
		},
	}
	defaults := settings.DefaultBench()
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	cli.AddFlags(cmd.Flags(), &defaults)
	return cmd
}

type benchOptions struct {
	subs, count int
	payload     string
	raw         bool
	timeout     time.Duration
	syncsub     string
	syncpub     string
	libzmq      string // folder with zsyncpub and zsyncsub, or ""
	tls         bool   // also run the syncmq job over tls://
}

// rawDeliveriesPerSec is the raw go-zeromq baseline's throughput measured
// on the development machine (docs/performance.md: 39,758/s), used only
// to tell the user how long --raw will take.
const rawDeliveriesPerSec = 40_000

// rawEstimate is how long the raw baseline should take: the zguide's 1 s
// subscriber sleep plus the deliveries at the measured rate.
func rawEstimate(subs, count int) time.Duration {
	return time.Second + time.Duration(float64(subs)*float64(count)/rawDeliveriesPerSec*float64(time.Second))
}

// benchJob is one way of running the zguide job: a publisher command and
// a subscriber command, given the endpoints.
type benchJob struct {
	name     string
	estimate time.Duration // how long it should take, 0: not known
	pubBin   string
	pubArgs  func(pub, sync string) []string
	subBin   string
	subArgs  func(pub, sync string, i int) []string
}

type jobResult struct {
	name      string
	wall      time.Duration
	pubRSS    int64 // KiB
	subRSSMax int64 // KiB
	received  []int
	failed    error
}

func runBench(ctx context.Context, o benchOptions) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o.syncpub = self
	if o.syncsub == "" {
		o.syncsub = filepath.Join(filepath.Dir(self), "syncsub")
		if _, err := os.Stat(o.syncsub); err != nil {
			if o.syncsub, err = exec.LookPath("syncsub"); err != nil {
				return cli.Usagef("syncsub: not next to syncpub nor on PATH; build it with go build -o . ./cmd/syncpub ./cmd/syncsub or pass --syncsub")
			}
		}
	}
	fmt.Printf("zguide job: %d subscribers x %d updates of %q, each node a process, loopback TCP\n", o.subs, o.count, o.payload)
	expect, count := fmt.Sprint(o.subs), fmt.Sprint(o.count)
	// Recovery stays on, as by default, but on a free port: the default
	// *:5563 may be taken on a benchmark machine.
	_, recoveryEP, err := freeEndpoints()
	if err != nil {
		return err
	}
	jobs := []benchJob{{
		name:   "syncmq (syncpub/syncsub)",
		pubBin: o.syncpub,
		pubArgs: func(pub, sync string) []string {
			return []string{"--bind", pub, "--sync-bind", sync, "--recovery-bind", recoveryEP, "--expect", expect, "--count", count, "--payload", o.payload, "--log-level", "warn"}
		},
		subBin: o.syncsub,
		subArgs: func(pub, sync string, i int) []string {
			return []string{"--connect", pub, "--sync", sync, "--output", "count", "--log-level", "warn", "--id", fmt.Sprint("bench-", i)}
		},
	}}
	if o.tls {
		dir, err := os.MkdirTemp("", "syncpub-bench-tls-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		pki, err := writeBenchPKI(dir, o.subs)
		if err != nil {
			return fmt.Errorf("certificates for the tls:// job: %w", err)
		}
		jobs = append(jobs, benchJob{
			name:   "syncmq over tls://",
			pubBin: o.syncpub,
			pubArgs: func(pub, sync string) []string {
				return []string{"--bind", overTLS(pub), "--sync-bind", overTLS(sync), "--recovery-bind", overTLS(recoveryEP),
					"--tls-cert", pki.pubCert, "--tls-key", pki.pubKey, "--tls-ca", pki.ca,
					"--expect", expect, "--count", count, "--payload", o.payload, "--log-level", "warn"}
			},
			subBin: o.syncsub,
			subArgs: func(pub, sync string, i int) []string {
				return []string{"--connect", overTLS(pub), "--sync", overTLS(sync), "--tls-cert", pki.subCert[i], "--tls-key", pki.subKeys[i], "--tls-ca", pki.ca,
					"--output", "count", "--log-level", "warn", "--id", fmt.Sprint("bench-", i)}
			},
		})
	}
	if o.raw {
		est := rawEstimate(o.subs, o.count)
		fmt.Printf("raw go-zeromq baseline: expect about %v (it delivers about %d messages/s, plus the zguide's 1 s sleep)\n",
			est.Round(time.Second), rawDeliveriesPerSec)
		jobs = append(jobs, benchJob{
			name:     "raw go-zeromq (zguide port)",
			estimate: est,
			pubBin:   o.syncpub,
			pubArgs: func(pub, sync string) []string {
				return []string{"bench-raw-pub", "--bind", pub, "--sync-bind", sync, "--expect", expect, "--count", count, "--payload", o.payload}
			},
			subBin: o.syncpub,
			subArgs: func(pub, sync string, _ int) []string {
				return []string{"bench-raw-sub", "--connect", pub, "--sync", sync}
			},
		})
	}
	if o.libzmq != "" {
		jobs = append(jobs, benchJob{
			name:    "libzmq (zguide C programs)",
			pubBin:  filepath.Join(o.libzmq, "zsyncpub"),
			pubArgs: func(pub, sync string) []string { return []string{pub, sync, expect, count, o.payload} },
			subBin:  filepath.Join(o.libzmq, "zsyncsub"),
			subArgs: func(pub, sync string, _ int) []string { return []string{pub, sync} },
		})
	}
	var results []jobResult
	for _, j := range jobs {
		results = append(results, runJob(ctx, o, j))
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "job\twall\tdeliveries/s\tpub peak RSS\tmax sub peak RSS\tlost\t")
	var failed error
	for _, r := range results {
		lost := 0
		for _, n := range r.received {
			lost += o.count - n
		}
		status := ""
		if r.failed != nil {
			status = " (" + r.failed.Error() + ")"
			failed = errors.Join(failed, fmt.Errorf("%s: %w", r.name, r.failed))
		}
		fmt.Fprintf(tw, "%s\t%v\t%.0f\t%.1f MiB\t%.1f MiB\t%d%s\t\n", r.name, r.wall.Round(time.Millisecond),
			float64(o.count*o.subs)/r.wall.Seconds(), float64(r.pubRSS)/1024, float64(r.subRSSMax)/1024, lost, status)
	}
	tw.Flush()
	for _, r := range results[1:] {
		if results[0].failed == nil && r.failed == nil {
			fmt.Printf("ratio: %s wall time / syncmq wall time = %.2fx\n", r.name, r.wall.Seconds()/results[0].wall.Seconds())
		}
	}
	if failed != nil && ctx.Err() != nil {
		return &cli.ExitError{Code: cli.ExitInterrupted, Err: fmt.Errorf("interrupted: %w", failed)}
	}
	return failed
}

// child is one process of a job, its output captured: the terminal sees
// it only when the process fails.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdout tailBuffer
	stderr tailBuffer
	err    error
}

func startChild(ctx context.Context, name, bin string, args []string) (*child, error) {
	c := &child{name: name, cmd: exec.CommandContext(ctx, bin, args...)}
	c.stdout.max, c.stderr.max = 64<<10, 64<<10
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	return c, c.cmd.Start()
}

// report prints a failed child's captured output to stderr.
func (c *child) report() {
	fmt.Fprintf(os.Stderr, "--- %s failed (%v); its output:\n%s%s--- end of %s\n", c.name, c.err, c.stdout.String(), c.stderr.String(), c.name)
}

// runJob starts the subscribers, then the publisher, and waits for all.
// Wall time runs from the first process start to the last exit.
func runJob(ctx context.Context, o benchOptions, j benchJob) jobResult {
	r := jobResult{name: j.name}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	pubEP, syncEP, err := freeEndpoints()
	if err != nil {
		r.failed = err
		return r
	}
	status := cli.NewStatus(os.Stderr)
	start := time.Now()
	var subs []*child
	var done atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait() // also on an early return: Start failed, the context kills the rest
	for i := 0; i < o.subs; i++ {
		c, err := startChild(ctx, fmt.Sprintf("%s subscriber %d", j.name, i), j.subBin, j.subArgs(pubEP, syncEP, i))
		if err != nil {
			cancel()
			r.failed = err
			return r
		}
		subs = append(subs, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.err = c.cmd.Wait()
			done.Add(1)
		}()
	}
	pub, err := startChild(ctx, j.name+" publisher", j.pubBin, j.pubArgs(pubEP, syncEP))
	if err != nil {
		cancel()
		r.failed = err
		return r
	}
	if cli.IsTerminal(os.Stderr) {
		status.Start(time.Second, func() string {
			line := fmt.Sprintf("%s: %v elapsed", j.name, time.Since(start).Round(time.Second))
			if j.estimate > 0 {
				line += fmt.Sprintf(" of about %v", j.estimate.Round(time.Second))
			}
			return line + fmt.Sprintf(", %d of %d subscribers done", done.Load(), o.subs)
		})
	}
	pub.err = pub.cmd.Wait()
	wg.Wait()
	status.Stop()
	r.wall = time.Since(start)
	if pub.err != nil {
		r.failed = fmt.Errorf("publisher: %w", pub.err)
		pub.report()
	}
	r.pubRSS = maxRSS(pub.cmd)
	for i, c := range subs {
		if c.err != nil {
			if r.failed == nil {
				r.failed = fmt.Errorf("subscriber %d: %w", i, c.err)
			}
			c.report()
		}
		r.subRSSMax = max(r.subRSSMax, maxRSS(c.cmd))
		r.received = append(r.received, receivedCount(c.stdout.String()))
	}
	return r
}

// receivedCount reads the zguide line "Received N updates", the first
// line a subscriber prints with --output count.
func receivedCount(out string) int {
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(first, "Received "), " updates"))
	return n
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	b       []byte
	dropped int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.dropped += over
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped > 0 {
		return fmt.Sprintf("[%d earlier bytes dropped]\n%s", t.dropped, t.b)
	}
	return string(t.b)
}

func maxRSS(c *exec.Cmd) int64 {
	if c.ProcessState == nil {
		return 0
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss // KiB on Linux
	}
	return 0
}

func freeEndpoints() (string, string, error) {
	var eps []string
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		eps = append(eps, "tcp://"+ln.Addr().String())
		ln.Close()
	}
	return eps[0], eps[1], nil
}
