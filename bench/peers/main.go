// Command peers compares syncmq with NATS, the pub-sub a Go user would
// most likely pick instead, on the same machine in the same run: NATS
// core, which retains nothing, and JetStream, which retains and replays
// as syncmq does, with a memory stream and a file stream.
//
// Every node is a separate process on loopback TCP: syncpub and syncsub,
// built from this repository (with --data-dir for syncmq's durable
// history), against nats-server (embedded in this binary, run as its own
// process) with nats.go publishers and subscribers (this binary again,
// in other modes). Each shape runs --runs times per system, rotating
// which system goes first, and the tables show medians of two clocks
// (from ready, and whole processes from exec to exit), the CPU and peak
// RSS of every process, and the ratios NATS / syncmq (above 1: syncmq is
// faster or uses less).
//
//	cd bench/peers && go run . --runs 3 --json results.json --plot ../../docs/peers.svg
//	cd bench/peers && go run . --quick --runs 1 --shapes zguide,latency-1k
//	cd bench/peers && go run . --from results.json --plot ../../docs/peers.svg
//
// It is a separate module so that the main module never depends on NATS.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
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
	if err := runCommand(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		stop()
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	runs       int
	shapes     string
	systems    string
	quick      bool
	scale      float64
	timeout    time.Duration
	repo       string
	jsonOut    string
	from       string
	plot       string
	markdown   string
	cpuProfile string
}

func (o *options) register(fs *flag.FlagSet) {
	fs.IntVar(&o.runs, "runs", 3, "runs per shape and system; the tables show medians")
	fs.StringVar(&o.shapes, "shapes", "", "comma-separated shapes to run (default: all): "+shapeNames())
	fs.StringVar(&o.systems, "systems", "", "comma-separated systems to run (default: all): "+systemNames())
	fs.BoolVar(&o.quick, "quick", false, "a hundredth of the messages (at least 200), for a smoke run")
	fs.Float64Var(&o.scale, "scale", 1, "multiply every shape's messages by this (e.g. 10 for runs long enough to profile)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on one job (one run of one shape on one system) after this long")
	fs.StringVar(&o.repo, "repo", "", "root of the syncmq repository to build syncpub and syncsub from (default: found above the working directory)")
	fs.StringVar(&o.jsonOut, "json", "", "also write every run's figures to this JSON file (after every job)")
	fs.StringVar(&o.from, "from", "", "run nothing: print the report (and --plot) from files --json wrote (comma-separated: their shapes joined)")
	fs.StringVar(&o.plot, "plot", "", "write a bar chart of the ratios (SVG) to this file")
	fs.StringVar(&o.markdown, "markdown", "", "write the tables as Markdown to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of every process of every job to this directory (pprof format; syncpub and syncsub are built with a hook for it)")
}

// runCommand runs the comparison (or loads it with --from), prints the
// report and writes what the flags ask for.
func runCommand(ctx context.Context, o options, out, progress io.Writer) error {
	var rep *report
	if o.from != "" {
		var err error
		if rep, err = loadReports(strings.Split(o.from, ",")); err != nil {
			return err
		}
	} else {
		var err error
		if rep, err = run(ctx, o, progress); err != nil {
			return err
		}
	}
	writeReport(out, rep)
	if o.plot != "" {
		if err := os.WriteFile(o.plot, plotRatios(rep), 0o644); err != nil {
			return err
		}
	}
	if o.markdown != "" {
		var b strings.Builder
		writeMarkdown(&b, rep)
		if err := os.WriteFile(o.markdown, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// saveReport writes rep as JSON to path, through a temporary file so
// that an interrupted bench leaves the last complete save.
func saveReport(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadReports reads reports --json wrote and joins their shapes, in the
// order given (a shape in several files: the later file's runs win), for
// a run done in parts; the header is the first file's, with the last
// one's load at the end.
func loadReports(paths []string) (*report, error) {
	var out *report
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		rep := &report{}
		if err := json.Unmarshal(b, rep); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if out == nil {
			out = rep
			continue
		}
		out.LoadEnd = rep.LoadEnd
	next:
		for _, sr := range rep.Shapes {
			for i, have := range out.Shapes {
				if have.Shape.Name == sr.Shape.Name {
					out.Shapes[i] = sr
					continue next
				}
			}
			out.Shapes = append(out.Shapes, sr)
		}
	}
	return out, nil
}

// report is a whole comparison: where it ran and every run's figures.
type report struct {
	Go        string          `json:"go"`
	Platform  string          `json:"platform"`
	CPUs      int             `json:"cpus"`
	Peers     string          `json:"peers"` // NATS module versions
	Runs      int             `json:"runs"`
	Quick     bool            `json:"quick"`
	Scale     float64         `json:"scale,omitempty"`
	Started   time.Time       `json:"started"`
	LoadStart string          `json:"load_start"`
	LoadEnd   string          `json:"load_end"`
	Shapes    []*shapeResults `json:"shapes"`
}

// shapeResults are every run of one shape.
type shapeResults struct {
	Shape shape                  `json:"shape"`
	Runs  map[system][]runResult `json:"runs"`
}

// run builds our commands, runs every selected shape o.runs times on
// each of its systems, writes progress, and returns the results. It
// fails only when the harness cannot run; a job that fails is reported
// in the tables.
func run(ctx context.Context, o options, progress io.Writer) (*report, error) {
	if o.runs < 1 {
		return nil, errors.New("runs: need at least 1")
	}
	shapes, err := selectShapes(o.shapes, o.quick, o.scale)
	if err != nil {
		return nil, err
	}
	systems, err := selectSystems(o.systems)
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
	buildArgs := []string{"build", "-o", tmp + string(filepath.Separator)}
	if o.cpuProfile != "" {
		if e.profileDir, err = filepath.Abs(o.cpuProfile); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(e.profileDir, 0o755); err != nil {
			return nil, err
		}
		overlay, err := profileOverlay(repo, tmp)
		if err != nil {
			return nil, err
		}
		buildArgs = append(buildArgs, "-overlay", overlay)
	}
	fmt.Fprintln(progress, "building syncpub and syncsub in", repo)
	build := exec.CommandContext(ctx, "go", append(buildArgs, "./cmd/syncpub", "./cmd/syncsub")...)
	build.Dir, build.Stdout, build.Stderr = repo, progress, progress
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building syncpub and syncsub: %w", err)
	}
	rep := &report{Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		Peers: peerVersions(), Runs: o.runs, Quick: o.quick, Scale: o.scale, Started: time.Now().UTC().Truncate(time.Second), LoadStart: loadAverage()}
	for _, s := range shapes {
		var order []system
		for _, sys := range s.systems() {
			if systems[sys] {
				order = append(order, sys)
			}
		}
		if len(order) == 0 {
			continue
		}
		sr := &shapeResults{Shape: s, Runs: map[system][]runResult{}}
		rep.Shapes = append(rep.Shapes, sr)
		for i := 0; i < o.runs; i++ {
			e.run = i + 1
			for j := range order { // each run starts with the next system
				sys := order[(i+j)%len(order)]
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				r := runShape(ctx, e, sys, s)
				sr.Runs[sys] = append(sr.Runs[sys], r)
				fmt.Fprintf(progress, "%s run %d/%d %s: %s (load %s)\n", s.Name, i+1, o.runs, sys, describeRun(s, r), loadAverage())
				if o.jsonOut != "" { // after every job: a long run interrupted keeps what it measured
					rep.LoadEnd = loadAverage()
					if err := saveReport(o.jsonOut, rep); err != nil {
						return rep, err
					}
				}
			}
		}
	}
	rep.LoadEnd = loadAverage()
	if o.jsonOut != "" {
		return rep, saveReport(o.jsonOut, rep)
	}
	return rep, nil
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
