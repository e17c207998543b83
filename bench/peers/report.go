package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// describeRun is one progress line.
func describeRun(s shape, r runResult) string {
	var b strings.Builder
	if s.latency() {
		fmt.Fprintf(&b, "p50 %v p99 %v", r.lat.p50.Round(time.Microsecond), r.lat.p99.Round(time.Microsecond))
	} else {
		fmt.Fprintf(&b, "wall %v", r.wall.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, " lost %d pub RSS %s", r.lost, mib(r.pubRSS))
	if r.serverRSS > 0 {
		fmt.Fprintf(&b, " server RSS %s", mib(r.serverRSS))
	}
	if r.note != "" {
		fmt.Fprintf(&b, " (%s)", r.note)
	}
	if r.err != nil {
		fmt.Fprintf(&b, " FAILED: %v", r.err)
	}
	return b.String()
}

func mib(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// summary is the medians of the runs of one shape on one system that
// completed, and what the others lost or why they failed.
type summary struct {
	ok                int // runs that completed
	wall              time.Duration
	pubRSS, serverRSS int64
	p50, p99          time.Duration
	lost              int // over every run
	notes             []string
	errs              []string
}

func summarizeRuns(rs []runResult) summary {
	var s summary
	var walls, p50s, p99s []time.Duration
	var pubs, servers []int64
	for _, r := range rs {
		s.lost += r.lost
		if r.note != "" {
			s.notes = append(s.notes, r.note)
		}
		if r.err != nil {
			s.errs = append(s.errs, r.err.Error())
			continue
		}
		s.ok++
		walls = append(walls, r.wall)
		p50s, p99s = append(p50s, r.lat.p50), append(p99s, r.lat.p99)
		pubs, servers = append(pubs, r.pubRSS), append(servers, r.serverRSS)
	}
	s.wall, s.p50, s.p99 = median(walls), median(p50s), median(p99s)
	s.pubRSS, s.serverRSS = median(pubs), median(servers)
	return s
}

// median of xs (the mean of the middle two for an even count); zero for none.
func median[T time.Duration | int64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func ratio(peer, ours time.Duration) string {
	if peer <= 0 || ours <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", peer.Seconds()/ours.Seconds())
}

func wallCell(s summary, runs int) string {
	if s.ok == 0 {
		return "failed"
	}
	c := fmtDuration(s.wall)
	if s.ok < runs {
		c += fmt.Sprintf(" (%d/%d ok)", s.ok, runs)
	}
	return c
}

func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func deliveriesPerSecond(s shape, wall time.Duration) string {
	if wall <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(s.count*s.subs)/wall.Seconds())
}

func payloadLabel(s shape) string {
	switch n := s.payloadBytes(); {
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// writeReport prints the header, the throughput and latency tables, the
// notes and the load average.
func writeReport(w io.Writer, o options, results []shapeResults, startLoad, endLoad string) {
	fmt.Fprintf(w, "syncmq vs NATS core (%s), each node a process, loopback TCP\n", peerVersions())
	fmt.Fprintf(w, "%s %s/%s, %d CPUs; median of %d runs per system, alternating which runs first", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), o.runs)
	if o.quick {
		fmt.Fprint(w, "; --quick counts")
	}
	fmt.Fprintf(w, "\nload average (1, 5, 15 min) at start: %s\n\n", startLoad)
	fmt.Fprintln(w, wallTimeDefinition)
	fmt.Fprintln(w, "ratio = NATS / syncmq: above 1 means syncmq is faster. lost = messages not counted, summed over all runs.")
	var tput, lat []shapeResults
	for _, r := range results {
		if r.shape.latency() {
			lat = append(lat, r)
		} else {
			tput = append(tput, r)
		}
	}
	var notes []string
	if len(tput) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "shape\tsubs\tmsgs\tpayload\ttopics\tsyncmq wall\tnats wall\tratio\tsyncmq deliv/s\tnats deliv/s\tsyncmq pub RSS\tnats pub RSS\tnats-server RSS\tlost syncmq\tlost nats\t")
		for _, r := range tput {
			s := r.shape
			ours, peer := summarizeRuns(r.runs[syncmq]), summarizeRuns(r.runs[natsrv])
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", s.name, s.subs, s.count, payloadLabel(s), max(1, s.topics),
				wallCell(ours, o.runs), wallCell(peer, o.runs), ratio(peer.wall, ours.wall),
				deliveriesPerSecond(s, ours.wall), deliveriesPerSecond(s, peer.wall),
				mib(ours.pubRSS), mib(peer.pubRSS), mib(peer.serverRSS), ours.lost, peer.lost)
			notes = appendNotes(notes, s, ours, peer)
		}
		tw.Flush()
	}
	if len(lat) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "publish-to-deliver latency over all subscribers' messages, paced (syncmq: now - Event.Time, the batch's publish time; NATS: now - send time in the payload)")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "shape\tsubs\tmsgs\tmsgs/s\tpayload\tsyncmq p50\tnats p50\tratio\tsyncmq p99\tnats p99\tratio\tsyncmq pub RSS\tnats pub RSS\tnats-server RSS\tlost syncmq\tlost nats\t")
		for _, r := range lat {
			s := r.shape
			ours, peer := summarizeRuns(r.runs[syncmq]), summarizeRuns(r.runs[natsrv])
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", s.name, s.subs, s.count, s.rate, payloadLabel(s),
				latCell(ours, ours.p50, o.runs), latCell(peer, peer.p50, o.runs), ratio(peer.p50, ours.p50),
				latCell(ours, ours.p99, o.runs), latCell(peer, peer.p99, o.runs), ratio(peer.p99, ours.p99),
				mib(ours.pubRSS), mib(peer.pubRSS), mib(peer.serverRSS), ours.lost, peer.lost)
			notes = appendNotes(notes, s, ours, peer)
		}
		tw.Flush()
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	fmt.Fprintf(w, "\nload average (1, 5, 15 min) at end: %s\n", endLoad)
}

func latCell(s summary, d time.Duration, runs int) string {
	if s.ok == 0 {
		return "failed"
	}
	c := fmtDuration(d)
	if s.ok < runs {
		c += fmt.Sprintf(" (%d/%d ok)", s.ok, runs)
	}
	return c
}

func appendNotes(notes []string, s shape, ours, peer summary) []string {
	for _, e := range ours.errs {
		notes = append(notes, fmt.Sprintf("%s: syncmq run failed: %s", s.name, shortError(e)))
	}
	for _, e := range peer.errs {
		notes = append(notes, fmt.Sprintf("%s: nats run failed: %s", s.name, shortError(e)))
	}
	for _, n := range ours.notes {
		notes = append(notes, fmt.Sprintf("%s: syncmq reported: %s", s.name, n))
	}
	for _, n := range peer.notes {
		notes = append(notes, fmt.Sprintf("%s: nats reported: %s", s.name, n))
	}
	return notes
}

// shortError drops the processes' stderr tails from a run's error: the
// progress output has them in full, the table's notes only say what failed.
func shortError(e string) string {
	var keep []string
	for _, l := range strings.Split(e, "\n") {
		if strings.HasPrefix(l, "  ") {
			continue // a stderr line
		}
		l = strings.TrimSuffix(l, "; its stderr ends:")
		if l != "" && l != "syncpub" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "; ")
}

// peerVersions names the NATS modules this binary was built with.
func peerVersions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "nats-server, nats.go"
	}
	var vs []string
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/nats-io/nats-server/v2":
			vs = append(vs, "nats-server "+d.Version)
		case "github.com/nats-io/nats.go":
			vs = append(vs, "nats.go "+d.Version)
		}
	}
	return strings.Join(vs, ", ")
}
