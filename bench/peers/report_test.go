package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleReport is a report with a throughput and a late-joiner shape,
// every system's runs made up so that each ratio is known.
func sampleReport() *report {
	run := func(wall, whole, catchUp time.Duration, cpu time.Duration) runResult {
		return runResult{Wall: wall, Whole: whole, CatchUp: catchUp, Received: []int{10}, PubCPU: cpu, PubRSS: 2048, SubRSS: 1024}
	}
	tput := &shapeResults{Shape: shape{Name: "size-64", Subs: 1, Count: 10, Size: 64, Topics: 1}, Runs: map[system][]runResult{
		syncmq:     {run(time.Second, 2*time.Second, 0, time.Second)},
		syncmqDisk: {run(time.Second, 2*time.Second, 0, time.Second)},
		natsrv:     {run(3*time.Second, 3*time.Second, 0, 2*time.Second)},
		jsMem:      {run(4*time.Second, 8*time.Second, 0, 4*time.Second)},
		jsFile:     {run(5*time.Second, 10*time.Second, 0, 5*time.Second), {Err: "natssub 0: boom"}},
	}}
	late := &shapeResults{Shape: shape{Name: "late-1k", Subs: 1, Count: 5, Size: 1024, Topics: 1, Backlog: 5}, Runs: map[system][]runResult{
		syncmq: {run(2*time.Second, 3*time.Second, time.Second, time.Second)},
		jsMem:  {run(time.Second, time.Second, 500*time.Millisecond, time.Second)},
	}}
	return &report{Go: "go1.x", Platform: "linux/amd64", CPUs: 2, Peers: "nats-server vX", Runs: 1, LoadStart: "1 2 3", LoadEnd: "4 5 6",
		Shapes: []*shapeResults{tput, late}}
}

func TestReportPrintsEveryRatio(t *testing.T) {
	var out bytes.Buffer
	writeReport(&out, sampleReport())
	t.Log(out.String())
	for _, want := range []string{
		"3.00x  1.50x  2.00x", // nats/syncmq: ready, whole, CPU
		"4.00x  4.00x  4.00x", // js-mem/syncmq
		"5.00x  5.00x  5.00x", // js-file/syncmq-disk, over the run that completed
		"0.50x  0.33x  1.00x", // late js-mem/syncmq: catch-up, whole, CPU
		"size-64: js-file run failed: natssub 0: boom",
		"5s (1/2 ok)", // js-file's ready wall, with the count of runs that completed
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestSavedRunsRenderAgain(t *testing.T) {
	dir := t.TempDir()
	rep := sampleReport()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(dir, "a.json")
	if err := os.WriteFile(a, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A second file with one of the shapes again: its runs replace the first's.
	rep2 := sampleReport()
	rep2.Shapes = rep2.Shapes[1:]
	rep2.Shapes[0].Runs[syncmq][0].CatchUp = 250 * time.Millisecond
	rep2.LoadEnd = "7 8 9"
	b2, _ := json.Marshal(rep2)
	c := filepath.Join(dir, "b.json")
	if err := os.WriteFile(c, b2, 0o600); err != nil {
		t.Fatal(err)
	}
	plot, md := filepath.Join(dir, "plot.svg"), filepath.Join(dir, "tables.md")
	var out bytes.Buffer
	if err := runCommand(t.Context(), options{from: a + "," + c, plot: plot, markdown: md}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	tables, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| size-64 | nats | 3s | 3s |", "| size-64 | 3.00x / 1.50x / 2.00x | 4.00x / 4.00x / 4.00x | 5.00x / 5.00x / 5.00x |", "| late-1k | - | 2.00x / 0.33x / 1.00x | - |"} {
		if !strings.Contains(string(tables), want) {
			t.Errorf("markdown lacks %q:\n%s", want, tables)
		}
	}
	for _, want := range []string{"2.00x", "at end: 7 8 9", "js-mem/syncmq"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg, []string{"size-64", "late-1k"})
}

// checkSVG checks that svg is well-formed XML with a bar per ratio of
// each named group.
func checkSVG(t *testing.T, svg []byte, groups []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	bars := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plot is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "fill" && a.Value != "white" {
					bars++
				}
			}
		}
	}
	// size-64 has three ratios, late-1k one; the legend has three swatches.
	if want := 3 + 1 + len(ratioPairs); bars != want {
		t.Errorf("plot has %d coloured rects, want %d", bars, want)
	}
	for _, g := range groups {
		if !bytes.Contains(svg, []byte(">"+g+"<")) {
			t.Errorf("plot lacks the group %q", g)
		}
	}
}

func TestProcCPUReadsThisProcess(t *testing.T) {
	deadline := time.Now().Add(100 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	if d, err := procCPU(os.Getpid()); err != nil || d <= 0 {
		t.Errorf("procCPU = %v, %v; want some CPU time", d, err)
	}
}
