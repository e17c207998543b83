package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run the zguide job as separate processes, ours and raw go-zeromq, and compare",
		Long: `bench runs the zguide synchronized-publisher job twice on loopback, each
node a separate process: once with syncpub/syncsub, once with a line-by-line
go-zeromq port of the zguide's programs (including its 1 s subscriber sleep).
It prints wall time, deliveries per second, peak RSS per process and loss
for both, and their ratio. syncsub must be next to syncpub or on PATH
(go build ./cmd/syncpub ./cmd/syncsub). With --libzmq it also runs the
zguide's C programs on libzmq, in the same run.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cli.Load(cmd, "SYNCPUB")
			if err != nil {
				return err
			}
			var o benchOptions
			if o.subs, err = c.Int("subscribers"); err != nil {
				return err
			}
			if o.count, err = c.Int("count"); err != nil {
				return err
			}
			if o.payload, err = c.String("payload"); err != nil {
				return err
			}
			if o.raw, err = c.Bool("raw"); err != nil {
				return err
			}
			if o.timeout, err = c.Duration("timeout"); err != nil {
				return err
			}
			if o.syncsub, err = c.String("syncsub"); err != nil {
				return err
			}
			if o.libzmq, err = c.String("libzmq"); err != nil {
				return err
			}
			if o.subs < 1 {
				return cli.Usagef("subscribers: need at least 1")
			}
			return runBench(cmd.Context(), o)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	fs := cmd.Flags()
	fs.Int("subscribers", 10, "subscriber processes")
	fs.Int("count", 1_000_000, "updates to publish")
	fs.String("payload", "Rhubarb", "payload of every update")
	fs.Bool("raw", true, "also run the raw go-zeromq baseline")
	fs.Duration("timeout", 10*time.Minute, "give up on a job after this long")
	fs.String("syncsub", "", "path of the syncsub binary (default: next to syncpub, then PATH)")
	fs.String("libzmq", "", "also run the zguide's C programs on libzmq from this folder (built by internal/libzmqbench/build.sh)")
	cli.AddCommonFlags(fs)
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
}

// benchJob is one way of running the zguide job: a publisher command and
// a subscriber command, given the endpoints.
type benchJob struct {
	name    string
	pubBin  string
	pubArgs func(pub, sync string) []string
	subBin  string
	subArgs func(pub, sync string, i int) []string
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
				return cli.Usagef("syncsub: not next to syncpub nor on PATH; build it with go build ./cmd/syncsub or pass --syncsub")
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
	if o.raw {
		jobs = append(jobs, benchJob{
			name:   "raw go-zeromq (zguide port)",
			pubBin: o.syncpub,
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
	var firstErr error
	for _, r := range results {
		lost := 0
		for _, n := range r.received {
			lost += o.count - n
		}
		status := ""
		if r.failed != nil {
			status = " (" + r.failed.Error() + ")"
			firstErr = errors.Join(firstErr, fmt.Errorf("%s: %w", r.name, r.failed))
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
	return firstErr
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
	start := time.Now()
	var subs []*exec.Cmd
	outs := make([]*bytes.Buffer, o.subs)
	for i := 0; i < o.subs; i++ {
		c := exec.CommandContext(ctx, j.subBin, j.subArgs(pubEP, syncEP, i)...)
		outs[i] = &bytes.Buffer{}
		c.Stdout, c.Stderr = outs[i], os.Stderr
		if err := c.Start(); err != nil {
			r.failed = err
			return r
		}
		subs = append(subs, c)
	}
	pub := exec.CommandContext(ctx, j.pubBin, j.pubArgs(pubEP, syncEP)...)
	pub.Stdout, pub.Stderr = os.Stderr, os.Stderr
	if err := pub.Start(); err != nil {
		r.failed = err
		return r
	}
	if err := pub.Wait(); err != nil {
		r.failed = fmt.Errorf("publisher: %w", err)
	}
	r.pubRSS = maxRSS(pub)
	for i, c := range subs {
		if err := c.Wait(); err != nil && r.failed == nil {
			r.failed = fmt.Errorf("subscriber %d: %w", i, err)
		}
		r.subRSSMax = max(r.subRSSMax, maxRSS(c))
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(outs[i].String()), "Received "), " updates"))
		r.received = append(r.received, n)
	}
	r.wall = time.Since(start)
	return r
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
