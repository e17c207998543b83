package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// describeRun is one progress line.
func describeRun(s shape, r runResult) string {
	var b strings.Builder
	switch {
	case s.latency():
		fmt.Fprintf(&b, "p50 %v p99 %v ", r.Lat.P50.Round(time.Microsecond), r.Lat.P99.Round(time.Microsecond))
	case s.late():
		fmt.Fprintf(&b, "catch-up %v ", fmtDuration(r.CatchUp))
	}
	fmt.Fprintf(&b, "wall %s whole %s cpu %s (pub %s subs %s server %s) lost %d RSS pub %s sub %s",
		fmtDuration(r.Wall), fmtDuration(r.Whole), fmtCPU(r.cpu()), fmtCPU(r.PubCPU), fmtCPU(r.SubCPU), fmtCPU(r.ServerCPU),
		r.Lost, mib(r.PubRSS), mib(r.SubRSS))
	if r.ServerRSS > 0 {
		fmt.Fprintf(&b, " server %s", mib(r.ServerRSS))
	}
	if r.Note != "" {
		fmt.Fprintf(&b, " (%s)", r.Note)
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

func fmtCPU(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// summary is the medians of the runs of one shape on one system that
// completed, and what the others lost or why they failed.
type summary struct {
	ok, runs                  int // runs that completed, of all
	wall, whole, catchUp      time.Duration
	pubRSS, subRSS, serverRSS int64
	pubCPU, subCPU, serverCPU time.Duration
	cpu                       time.Duration
	p50, p99                  time.Duration
	lost                      int // over every run
	notes                     []string
	errs                      []string
}

func summarizeRuns(rs []runResult) summary {
	s := summary{runs: len(rs)}
	var walls, wholes, catchUps, pubCPUs, subCPUs, serverCPUs, cpus, p50s, p99s []time.Duration
	var pubs, subs, servers []int64
	for _, r := range rs {
		s.lost += r.Lost
		if r.Note != "" {
			s.notes = append(s.notes, r.Note)
		}
		if r.failed() {
			s.errs = append(s.errs, r.Err)
			continue
		}
		s.ok++
		walls, wholes, catchUps = append(walls, r.Wall), append(wholes, r.Whole), append(catchUps, r.CatchUp)
		pubCPUs, subCPUs, serverCPUs, cpus = append(pubCPUs, r.PubCPU), append(subCPUs, r.SubCPU), append(serverCPUs, r.ServerCPU), append(cpus, r.cpu())
		p50s, p99s = append(p50s, r.Lat.P50), append(p99s, r.Lat.P99)
		pubs, subs, servers = append(pubs, r.PubRSS), append(subs, r.SubRSS), append(servers, r.ServerRSS)
	}
	s.wall, s.whole, s.catchUp = median(walls), median(wholes), median(catchUps)
	s.pubCPU, s.subCPU, s.serverCPU, s.cpu = median(pubCPUs), median(subCPUs), median(serverCPUs), median(cpus)
	s.p50, s.p99 = median(p50s), median(p99s)
	s.pubRSS, s.subRSS, s.serverRSS = median(pubs), median(subs), median(servers)
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

// ratioOf is peer / ours, or 0 when either is missing.
func ratioOf(peer, ours time.Duration) float64 {
	if peer <= 0 || ours <= 0 {
		return 0
	}
	return peer.Seconds() / ours.Seconds()
}

func ratio(peer, ours time.Duration) string {
	r := ratioOf(peer, ours)
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// cell formats d, or says the runs failed, with how many completed.
func cell(s summary, d time.Duration) string {
	if s.ok == 0 {
		return "failed"
	}
	c := fmtDuration(d)
	if s.ok < s.runs {
		c += fmt.Sprintf(" (%d/%d ok)", s.ok, s.runs)
	}
	return c
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func perSecond(n int, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}

func payloadLabel(s shape) string {
	switch n := s.payloadBytes(); {
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// summaries are one shape's summaries by system.
type summaries map[system]summary

func summarizeShape(sr *shapeResults) summaries {
	out := summaries{}
	for sys, rs := range sr.Runs {
		out[sys] = summarizeRuns(rs)
	}
	return out
}

// systemsRun lists the systems of the shape that have runs, in order.
func systemsRun(sr *shapeResults) []system {
	var out []system
	for _, sys := range allSystems() {
		if len(sr.Runs[sys]) > 0 {
			out = append(out, sys)
		}
	}
	return out
}

const systemsDefinition = `systems: syncmq = syncpub and syncsub, defaults (history in memory, 128 MiB); syncmq-disk = the same
with syncpub --data-dir (a journal, fsync every second: the default policy); nats = NATS core
(nats-server defaults, nats.go Publish and async subscriptions); js-mem, js-file = JetStream, a
memory or file stream with one replica, nats.go's jetstream package: PublishAsync and ordered
consumers (deliver all). subs-1000 puts every subscriber in one process: syncmq 1000
coord.Subscribers (each its own connections), NATS one connection with 1000 subscriptions (or
ordered consumers), as nats.go has a program share its connection.
CPU = user+sys seconds of the publisher, of every subscriber process together, of nats-server, and
their total; RSS = peak resident set (VmHWM) of the publisher, the largest subscriber process and
nats-server. lost = messages not counted, summed over all runs.`

// writeReport prints the header, the tables, the notes and the load.
func writeReport(w io.Writer, rep *report) {
	fmt.Fprintf(w, "syncmq vs NATS core and JetStream (%s), each node a process, loopback TCP\n", rep.Peers)
	fmt.Fprintf(w, "%s %s, %d CPUs; median of %d runs per system, rotating which system runs first", rep.Go, rep.Platform, rep.CPUs, rep.Runs)
	if rep.Quick {
		fmt.Fprint(w, "; --quick counts")
	}
	if rep.Scale > 0 && rep.Scale != 1 {
		fmt.Fprintf(w, "; counts scaled by %g", rep.Scale)
	}
	fmt.Fprintf(w, "\nload average (1, 5, 15 min) at start: %s\n\n", rep.LoadStart)
	fmt.Fprintln(w, readyClockDefinition)
	fmt.Fprintln(w, wholeClockDefinition)
	fmt.Fprintln(w, systemsDefinition)
	fmt.Fprintln(w, "ratio = peer / ours (js-file against syncmq-disk): above 1 means syncmq is faster or uses less CPU.")
	var tput, late, lat []*shapeResults
	for _, r := range rep.Shapes {
		switch {
		case r.Shape.latency():
			lat = append(lat, r)
		case r.Shape.late():
			late = append(late, r)
		default:
			tput = append(tput, r)
		}
	}
	var notes []string
	if len(tput) > 0 {
		fmt.Fprintln(w, "\nthroughput, as fast as the publisher goes")
		notes = writeThroughput(w, tput, notes)
		fmt.Fprintln(w, "\nratios, throughput (ready clock, whole clock, CPU)")
		writeRatios(w, tput, "ready", func(s summary) time.Duration { return s.wall })
	}
	if len(late) > 0 {
		fmt.Fprintln(w, "\n"+lateDefinition)
		notes = writeLate(w, late, notes)
		fmt.Fprintln(w, "\nratios, late joiner (catch-up, whole clock, CPU)")
		writeRatios(w, late, "catch-up", func(s summary) time.Duration { return s.catchUp })
	}
	if len(lat) > 0 {
		fmt.Fprintln(w, "\npublish-to-deliver latency over all subscribers' messages, paced (syncmq: now - Event.Time, the batch's publish time; NATS: now - send time in the payload)")
		notes = writeLatency(w, lat, notes)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	fmt.Fprintf(w, "\nload average (1, 5, 15 min) at end: %s\n", rep.LoadEnd)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

func writeThroughput(w io.Writer, rs []*shapeResults, notes []string) []string {
	tw := newTable(w)
	fmt.Fprintln(tw, "shape\tsubs\tmsgs\tpayload\ttopics\tsystem\tready wall\twhole wall\tdeliv/s\tCPU pub\tCPU subs\tCPU server\tCPU total\tRSS pub\tRSS sub\tRSS server\tlost\t")
	for _, r := range rs {
		s, sums := r.Shape, summarizeShape(r)
		for _, sys := range systemsRun(r) {
			m := sums[sys]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", s.Name, s.Subs, s.Count, payloadLabel(s), max(1, s.Topics), sys,
				cell(m, m.wall), cell(m, m.whole), perSecond(s.deliveries(), m.wall),
				fmtCPU(m.pubCPU), fmtCPU(m.subCPU), fmtCPU(m.serverCPU), fmtCPU(m.cpu),
				mib(m.pubRSS), mib(m.subRSS), mib(m.serverRSS), m.lost)
			notes = appendNotes(notes, s, sys, m)
		}
	}
	tw.Flush()
	return notes
}

func writeLate(w io.Writer, rs []*shapeResults, notes []string) []string {
	tw := newTable(w)
	fmt.Fprintln(tw, "shape\tbacklog\tlive\tpayload\tsystem\tcatch-up\tcatch-up MB/s\tready wall\twhole wall\tCPU pub\tCPU sub\tCPU server\tCPU total\tRSS pub\tRSS sub\tRSS server\tlost\t")
	for _, r := range rs {
		s, sums := r.Shape, summarizeShape(r)
		for _, sys := range systemsRun(r) {
			m := sums[sys]
			mbps := "-"
			if m.catchUp > 0 {
				mbps = fmt.Sprintf("%.0f", float64(s.Backlog*s.payloadBytes())/1e6/m.catchUp.Seconds())
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", s.Name, s.Backlog, s.Count, payloadLabel(s), sys,
				cell(m, m.catchUp), mbps, cell(m, m.wall), cell(m, m.whole),
				fmtCPU(m.pubCPU), fmtCPU(m.subCPU), fmtCPU(m.serverCPU), fmtCPU(m.cpu),
				mib(m.pubRSS), mib(m.subRSS), mib(m.serverRSS), m.lost)
			notes = appendNotes(notes, s, sys, m)
		}
	}
	tw.Flush()
	return notes
}

// writeRatios prints, per shape, each pair's ratio of the first clock
// (the ready clock, or the catch-up), the whole clock and the CPU.
func writeRatios(w io.Writer, rs []*shapeResults, firstLabel string, first func(summary) time.Duration) {
	tw := newTable(w)
	fmt.Fprint(tw, "shape\t")
	for _, p := range ratioPairs {
		fmt.Fprintf(tw, "%s\t \t \t", p.label)
	}
	fmt.Fprintln(tw)
	fmt.Fprint(tw, "\t")
	for range ratioPairs {
		fmt.Fprintf(tw, "%s\twhole\tCPU\t", firstLabel)
	}
	fmt.Fprintln(tw)
	for _, r := range rs {
		sums := summarizeShape(r)
		fmt.Fprintf(tw, "%s\t", r.Shape.Name)
		for _, p := range ratioPairs {
			peer, ok1 := sums[p.peer]
			ours, ok2 := sums[p.ours]
			if !ok1 || !ok2 {
				fmt.Fprint(tw, "-\t-\t-\t")
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t", ratio(first(peer), first(ours)), ratio(peer.whole, ours.whole), ratio(peer.cpu, ours.cpu))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func writeLatency(w io.Writer, rs []*shapeResults, notes []string) []string {
	tw := newTable(w)
	fmt.Fprintln(tw, "shape\tsubs\tmsgs\tmsgs/s\tpayload\tsystem\tp50\tp99\twhole wall\tCPU total\tRSS pub\tRSS sub\tRSS server\tlost\t")
	for _, r := range rs {
		s, sums := r.Shape, summarizeShape(r)
		for _, sys := range systemsRun(r) {
			m := sums[sys]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", s.Name, s.Subs, s.Count, s.Rate, payloadLabel(s), sys,
				cell(m, m.p50), cell(m, m.p99), cell(m, m.whole), fmtCPU(m.cpu), mib(m.pubRSS), mib(m.subRSS), mib(m.serverRSS), m.lost)
			notes = appendNotes(notes, s, sys, m)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratios, latency (p50, p99)")
	tw = newTable(w)
	fmt.Fprint(tw, "shape\t")
	for _, p := range ratioPairs {
		fmt.Fprintf(tw, "%s p50\tp99\t", p.label)
	}
	fmt.Fprintln(tw)
	for _, r := range rs {
		sums := summarizeShape(r)
		fmt.Fprintf(tw, "%s\t", r.Shape.Name)
		for _, p := range ratioPairs {
			peer, ours := sums[p.peer], sums[p.ours]
			fmt.Fprintf(tw, "%s\t%s\t", ratio(peer.p50, ours.p50), ratio(peer.p99, ours.p99))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return notes
}

func appendNotes(notes []string, s shape, sys system, m summary) []string {
	for _, e := range m.errs {
		notes = append(notes, fmt.Sprintf("%s: %s run failed: %s", s.Name, sys, shortError(e)))
	}
	for _, n := range m.notes {
		notes = append(notes, fmt.Sprintf("%s: %s reported: %s", s.Name, sys, n))
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
