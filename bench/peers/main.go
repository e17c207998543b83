// Command peers compares syncmq with NATS core, the pub-sub a Go user
// would most likely pick instead, on the same machine in the same run.
//
// Every node is a separate process on loopback TCP: syncpub and syncsub,
// built from this repository, against nats-server (embedded in this
// binary, run as its own process) with a nats.go publisher and nats.go
// subscribers (this binary again, in other modes). Each shape runs --runs
// times per system, alternating which goes first, and the table shows
// medians and the ratio NATS / syncmq (above 1: syncmq is faster).
//
//	cd bench/peers && go run . --runs 5
//	cd bench/peers && go run . --quick --runs 1 --shapes zguide,latency-1k
//
// It is a separate module so that the main module never depends on NATS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if m, args, ok := childMode(); ok {
		runChildMode(m, args)
	}
	var o options
	fs := flag.NewFlagSet("peers", flag.ExitOnError)
	o.register(fs)
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "peers: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := run(ctx, o, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		stop()
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	runs    int
	shapes  string
	quick   bool
	timeout time.Duration
	repo    string
}

func (o *options) register(fs *flag.FlagSet) {
	fs.IntVar(&o.runs, "runs", 5, "runs per shape and system; the table shows medians")
	fs.StringVar(&o.shapes, "shapes", "", "comma-separated shapes to run (default: all): "+shapeNames())
	fs.BoolVar(&o.quick, "quick", false, "a hundredth of the messages (at least 200), for a smoke run")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on one job (one run of one shape on one system) after this long")
	fs.StringVar(&o.repo, "repo", "", "root of the syncmq repository to build syncpub and syncsub from (default: found above the working directory)")
}

// shapeResults are every run of one shape.
type shapeResults struct {
	shape shape
	runs  map[system][]runResult
}

// run builds our commands, runs every selected shape o.runs times on both
// systems, writes the table to out and progress to progress, and returns
// the results. It fails only when the harness cannot run; a job that fails
// is reported in the table.
func run(ctx context.Context, o options, out, progress io.Writer) ([]shapeResults, error) {
	if o.runs < 1 {
		return nil, errors.New("runs: need at least 1")
	}
	shapes, err := selectShapes(o.shapes, o.quick)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	repo := o.repo
	if repo == "" {
		if repo, err = findRepo(); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "syncmq-peers-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	e := &env{self: self, tmp: tmp, timeout: o.timeout, grace: afterPublisherGrace,
		syncpub: filepath.Join(tmp, "syncpub"), syncsub: filepath.Join(tmp, "syncsub")}
	fmt.Fprintln(progress, "building syncpub and syncsub in", repo)
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp+string(filepath.Separator), "./cmd/syncpub", "./cmd/syncsub")
	build.Dir, build.Stdout, build.Stderr = repo, progress, progress
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building syncpub and syncsub: %w", err)
	}
	startLoad := loadAverage()
	var results []shapeResults
	for _, s := range shapes {
		sr := shapeResults{shape: s, runs: map[system][]runResult{}}
		for i := 0; i < o.runs; i++ {
			order := []system{syncmq, natsrv}
			if i%2 == 1 {
				order = []system{natsrv, syncmq}
			}
			for _, sys := range order {
				if err := ctx.Err(); err != nil {
					return results, err
				}
				r := runShape(ctx, e, sys, s)
				sr.runs[sys] = append(sr.runs[sys], r)
				fmt.Fprintf(progress, "%s run %d/%d %s: %s\n", s.name, i+1, o.runs, sys, describeRun(s, r))
			}
		}
		results = append(results, sr)
	}
	writeReport(out, o, results, startLoad, loadAverage())
	return results, nil
}

// findRepo walks up from the working directory to the syncmq module root.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(strings.TrimSpace(string(b)), "module github.com/syncmq/syncmq\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no syncmq repository above the working directory; give --repo")
		}
		dir = parent
	}
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
