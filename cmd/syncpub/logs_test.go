package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// logEntry is one JSON log line; numbers keep their digits (epochs do
// not fit a float64).
type logEntry map[string]any

// num returns a numeric field as a float64 (0 if absent).
func (e logEntry) num(key string) float64 {
	n, _ := e[key].(json.Number)
	f, _ := n.Float64()
	return f
}

// str returns a field as written.
func (e logEntry) str(key string) string { return fmt.Sprint(e[key]) }

// logLines returns the JSON log lines of p with message msg (and, if node
// is set, that node).
func logLines(p *proctest.Proc, msg, node string) []logEntry {
	var out []logEntry
	sc := bufio.NewScanner(strings.NewReader(p.Stderr.String()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		d := json.NewDecoder(strings.NewReader(sc.Text()))
		d.UseNumber()
		var m logEntry
		if d.Decode(&m) != nil || m["msg"] != msg {
			continue
		}
		if node == "" || m["node"] == node {
			out = append(out, m)
		}
	}
	return out
}

// logLine returns the first such line.
func logLine(p *proctest.Proc, msg, node string) (logEntry, bool) {
	if l := logLines(p, msg, node); len(l) > 0 {
		return l[0], true
	}
	return nil, false
}

func waitLog(t *testing.T, p *proctest.Proc, timeout time.Duration, msg, node string) logEntry {
	t.Helper()
	var m logEntry
	clustertest.WaitFor(t, timeout, fmt.Sprintf("log %q %s", msg, node), func() bool {
		var ok bool
		m, ok = logLine(p, msg, node)
		return ok
	})
	return m
}
