package main

import (
	"fmt"
	"io"
	"strings"
)

// writeMarkdown prints the report's tables as Markdown, for
// docs/performance.md: the same medians as writeReport, fewer columns.
func writeMarkdown(w io.Writer, rep *report) {
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
	if len(tput) > 0 {
		fmt.Fprintln(w, "| shape | system | ready wall | whole wall | CPU pub / subs / server = total | RSS pub / sub / server | lost |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, r := range tput {
			sums := summarizeShape(r)
			for _, sys := range systemsRun(r) {
				m := sums[sys]
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %d |\n", r.Shape.Name, sys, cell(m, m.wall), cell(m, m.whole),
					cpuCell(m), rssCell(m), m.lost)
			}
		}
		fmt.Fprintln(w)
		writeMarkdownRatios(w, tput, "ready")
	}
	if len(late) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| shape | system | catch-up | catch-up MB/s | ready wall | whole wall | CPU pub / sub / server = total | RSS pub / sub / server | lost |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
		for _, r := range late {
			sums := summarizeShape(r)
			for _, sys := range systemsRun(r) {
				m := sums[sys]
				mbps := "-"
				if m.catchUp > 0 {
					mbps = fmt.Sprintf("%.0f", float64(r.Shape.Backlog*r.Shape.payloadBytes())/1e6/m.catchUp.Seconds())
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", r.Shape.Name, sys, cell(m, m.catchUp), mbps,
					cell(m, m.wall), cell(m, m.whole), cpuCell(m), rssCell(m), m.lost)
			}
		}
		fmt.Fprintln(w)
		writeMarkdownRatios(w, late, "catch-up")
	}
	if len(lat) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| shape | system | p50 | p99 | whole wall | CPU total | RSS pub / sub / server | lost |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, r := range lat {
			sums := summarizeShape(r)
			for _, sys := range systemsRun(r) {
				m := sums[sys]
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d |\n", r.Shape.Name, sys, cell(m, m.p50), cell(m, m.p99),
					cell(m, m.whole), fmtCPU(m.cpu), rssCell(m), m.lost)
			}
		}
	}
	var notes []string
	for _, r := range rep.Shapes {
		sums := summarizeShape(r)
		for _, sys := range systemsRun(r) {
			notes = appendNotes(notes, r.Shape, sys, sums[sys])
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(n, "|", "/"))
		}
	}
}

// writeMarkdownRatios prints each pair's ratios of the first clock, the
// whole clock and the CPU, one row per shape.
func writeMarkdownRatios(w io.Writer, rs []*shapeResults, firstLabel string) {
	fmt.Fprint(w, "| shape |")
	for _, p := range ratioPairs {
		fmt.Fprintf(w, " %s %s / whole / CPU |", p.label, firstLabel)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---|")
	for range ratioPairs {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		sums := summarizeShape(r)
		fmt.Fprintf(w, "| %s |", r.Shape.Name)
		for _, p := range ratioPairs {
			peer, ok1 := sums[p.peer]
			ours, ok2 := sums[p.ours]
			if !ok1 || !ok2 {
				fmt.Fprint(w, " - |")
				continue
			}
			first := peer.wall
			firstOurs := ours.wall
			if firstLabel == "catch-up" {
				first, firstOurs = peer.catchUp, ours.catchUp
			}
			fmt.Fprintf(w, " %s / %s / %s |", ratio(first, firstOurs), ratio(peer.whole, ours.whole), ratio(peer.cpu, ours.cpu))
		}
		fmt.Fprintln(w)
	}
}

func cpuCell(m summary) string {
	return fmt.Sprintf("%s / %s / %s = %s", fmtCPU(m.pubCPU), fmtCPU(m.subCPU), fmtCPU(m.serverCPU), fmtCPU(m.cpu))
}

func rssCell(m summary) string {
	return fmt.Sprintf("%s / %s / %s", mibShort(m.pubRSS), mibShort(m.subRSS), mibShort(m.serverRSS))
}

func mibShort(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(kib)/1024)
}
