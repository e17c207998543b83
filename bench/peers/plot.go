package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"time"
)

// plotRatios draws the report's ratios as an SVG bar chart: one group per
// throughput and late-joiner shape, one bar per ratio pair, the bar the
// whole-clock ratio and a tick across it the ready-clock one (the
// catch-up for a late joiner). The scale is logarithmic and bars grow
// from 1x, up where syncmq is faster and down where it is slower; dashed
// lines mark the 1.5x and 2x goals.
func plotRatios(rep *report) []byte {
	type bar struct {
		whole, first float64 // 0: missing
	}
	type group struct {
		name string
		bars []bar // one per ratioPairs entry
	}
	var groups []group
	lo, hi := 1.0, 1.0
	for _, sr := range rep.Shapes {
		if sr.Shape.latency() {
			continue
		}
		sums := summarizeShape(sr)
		g := group{name: sr.Shape.Name}
		for _, p := range ratioPairs {
			peer, ok1 := sums[p.peer]
			ours, ok2 := sums[p.ours]
			var b bar
			if ok1 && ok2 {
				first := func(s summary) time.Duration { return s.wall }
				if sr.Shape.late() {
					first = func(s summary) time.Duration { return s.catchUp }
				}
				b = bar{whole: ratioOf(peer.whole, ours.whole), first: ratioOf(first(peer), first(ours))}
			}
			for _, v := range []float64{b.whole, b.first} {
				if v > 0 {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
			g.bars = append(g.bars, b)
		}
		groups = append(groups, g)
	}
	// Whole decades around the data, at least 0.1x to 10x.
	loExp := math.Min(-1, math.Floor(math.Log10(lo)))
	hiExp := math.Max(1, math.Ceil(math.Log10(hi)))

	const (
		left, right, top, bottom = 70.0, 20.0, 70.0, 110.0
		barW, groupGap           = 16.0, 18.0
		plotH                    = 340.0
	)
	groupW := barW*float64(len(ratioPairs)) + groupGap
	plotW := math.Max(groupW*float64(len(groups)), 800)
	width, height := left+plotW+right, top+plotH+bottom
	y := func(v float64) float64 {
		return top + plotH*(hiExp-math.Log10(v))/(hiExp-loExp)
	}
	colors := []string{"#4e79a7", "#f28e2b", "#59a14f"}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	text(&b, left, 22, 15, "start", "bold", "syncmq against NATS core and JetStream: the peer's time over syncmq's, each node a process")
	sub := fmt.Sprintf("%s, %s, %d CPUs; median of %d runs; load at start %s, at end %s", rep.Peers, rep.Go, rep.CPUs, rep.Runs, rep.LoadStart, rep.LoadEnd)
	if rep.Quick {
		sub += "; --quick counts"
	}
	text(&b, left, 40, 11, "start", "", sub)
	text(&b, left, 56, 11, "start", "", "bar: whole processes, exec to exit; tick: from ready (late joiners: the catch-up); above 1x syncmq is faster")

	// Grid: 1, 2, 5 per decade, labelled.
	for e := loExp; e <= hiExp; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > hiExp+1e-9 {
				break
			}
			yy := y(v)
			stroke, w := "#e0e0e0", 1.0
			if m == 1 {
				stroke = "#c0c0c0"
			}
			if v == 1 {
				stroke, w = "#000000", 1.5
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"/>`+"\n", left, yy, left+plotW, yy, stroke, w)
			text(&b, left-6, yy+4, 10, "end", "", formatRatio(v))
		}
	}
	for _, goal := range []struct {
		v     float64
		label string
	}{{1.5, "1.5x goal (NATS core)"}, {2, "2x goal (JetStream)"}} {
		if math.Log10(goal.v) > hiExp {
			continue
		}
		yy := y(goal.v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#b03030" stroke-width="1" stroke-dasharray="5,4"/>`+"\n", left, yy, left+plotW, yy)
		text(&b, left+plotW-4, yy-3, 9, "end", "", goal.label)
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000000"/>`+"\n", left, top, left, top+plotH)
	textRotated(&b, 18, top+plotH/2, 11, "peer time / syncmq time (log scale)")

	for gi, g := range groups {
		x0 := left + groupGap/2 + float64(gi)*groupW
		for bi, br := range g.bars {
			x := x0 + float64(bi)*barW
			if br.whole > 0 {
				y1, y2 := y(math.Max(br.whole, 1)), y(math.Min(br.whole, 1))
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: whole %s</title></rect>`+"\n",
					x+1, y1, barW-2, math.Max(y2-y1, 0.5), colors[bi], escape(g.name), escape(ratioPairs[bi].label), formatRatio(br.whole))
				ly, anchor := y1-3, "start"
				if br.whole < 1 {
					ly, anchor = y2+3, "end"
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="8" text-anchor="%s" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
					x+barW/2+3, ly, anchor, x+barW/2+3, ly, formatRatio(br.whole))
			}
			if br.first > 0 {
				yy := y(br.first)
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000000" stroke-width="2"><title>%s %s: ready %s</title></line>`+"\n",
					x-1, yy, x+barW+1, yy, escape(g.name), escape(ratioPairs[bi].label), formatRatio(br.first))
			}
		}
		lx, ly := x0+groupW/2-groupGap/2, top+plotH+10
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="end" transform="rotate(-40 %.1f %.1f)">%s</text>`+"\n", lx, ly, lx, ly, escape(g.name))
	}
	// Legend.
	lx := left
	ly := height - 14
	for i, p := range ratioPairs {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", lx, ly-10, colors[i])
		text(&b, lx+16, ly, 11, "start", "", p.label)
		lx += 40 + 7*float64(len(p.label))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000000" stroke-width="2"/>`+"\n", lx, ly-4, lx+14, ly-4)
	text(&b, lx+18, ly, 11, "start", "", "ready clock / catch-up")
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func text(b *bytes.Buffer, x, y, size float64, anchor, weight, s string) {
	w := ""
	if weight != "" {
		w = fmt.Sprintf(` font-weight="%s"`, weight)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%.0f" text-anchor="%s"%s>%s</text>`+"\n", x, y, size, anchor, w, escape(s))
}

func textRotated(b *bytes.Buffer, x, y, size float64, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%.0f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n", x, y, size, x, y, escape(s))
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// formatRatio prints a ratio with the precision its size needs.
func formatRatio(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0fx", v)
	case v >= 1:
		return fmt.Sprintf("%.1fx", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2fx", v)
	}
	return fmt.Sprintf("%.3fx", v)
}
