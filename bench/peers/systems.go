package main

import (
	"fmt"
	"strings"
)

// system names one side of the comparison.
type system string

const (
	syncmq     system = "syncmq"      // syncpub with its memory history (the default)
	syncmqDisk system = "syncmq-disk" // syncpub --data-dir, default fsync policy
	natsrv     system = "nats"        // NATS core: nats-server, nats.go
	jsMem      system = "js-mem"      // JetStream, a memory stream
	jsFile     system = "js-file"     // JetStream, a file stream
)

// allSystems lists every system in the order they run within a run.
func allSystems() []system { return []system{syncmq, syncmqDisk, natsrv, jsMem, jsFile} }

// jetStream reports whether the system is NATS with JetStream.
func (s system) jetStream() bool { return s == jsMem || s == jsFile }

// nats reports whether the system is NATS, core or JetStream.
func (s system) nats() bool { return s == natsrv || s.jetStream() }

// storage is the JetStream stream's storage ("memory" or "file"); empty
// for the others.
func (s system) storage() string {
	switch s {
	case jsMem:
		return "memory"
	case jsFile:
		return "file"
	}
	return ""
}

// pair is one ratio the report prints: peer's figure over ours, so above
// 1 means syncmq is faster (or uses less).
type pair struct {
	peer, ours system
	label      string
}

// ratioPairs are the comparisons: NATS core against syncmq's default
// (NATS retains nothing, syncmq retains in memory), and each JetStream
// store against syncmq's store of the same kind.
var ratioPairs = []pair{
	{peer: natsrv, ours: syncmq, label: "nats/syncmq"},
	{peer: jsMem, ours: syncmq, label: "js-mem/syncmq"},
	{peer: jsFile, ours: syncmqDisk, label: "js-file/syncmq-disk"},
}

// selectSystems parses the comma-separated list (all when empty).
func selectSystems(list string) (map[system]bool, error) {
	out := map[system]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		found := false
		for _, s := range allSystems() {
			if string(s) == n {
				out[s], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("systems: no system %q (have %s)", n, systemNames())
		}
	}
	if len(out) == 0 {
		for _, s := range allSystems() {
			out[s] = true
		}
	}
	return out, nil
}

func systemNames() string {
	var names []string
	for _, s := range allSystems() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}
