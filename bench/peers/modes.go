package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// childEnv marks a process the bench started in one of its modes, so that
// "peers natssub ..." typed by hand is not mistaken for one and a test
// binary knows to run a mode instead of its tests.
const childEnv = "SYNCMQ_PEERS_CHILD"

// modes are the roles the bench binary takes when it re-executes itself.
var modes = map[string]func(args []string) error{
	"natsserver":  runNATSServer,
	"natspub":     runNATSPub,
	"natssub":     runNATSSub,
	"synclatsub":  runSyncLatencySub,
	"syncsubs":    runSyncSubs,
	"synclatepub": runSyncLatePub,
}

// childMode returns the mode this process was started in, if any.
func childMode() (func([]string) error, []string, bool) {
	if os.Getenv(childEnv) != "1" || len(os.Args) < 2 {
		return nil, nil, false
	}
	m, ok := modes[os.Args[1]]
	return m, os.Args[2:], ok
}

// runChildMode runs the mode and exits; it never returns.
func runChildMode(m func([]string) error, args []string) {
	stopProfile := startModeProfile()
	err := m(args)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// waitGo blocks until the bench writes "go" on stdin.
func waitGo() error {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "go" {
			return nil
		}
	}
	return errors.New("stdin closed before go")
}

// payloads yields the publisher's payloads: the zguide's fixed string, or
// windows of a random pool (as syncpub --size does), with the send time
// in the first 8 bytes when stamped.
type payloads struct {
	fixed   []byte
	pool    []byte
	size    int
	stamped bool
	scratch []byte
}

func newPayloads(size int, stamped bool) *payloads {
	if size == 0 {
		return &payloads{fixed: []byte(zguidePayload)}
	}
	p := &payloads{pool: make([]byte, 2*size+4096), size: size, stamped: stamped, scratch: make([]byte, size)}
	_, _ = rand.Read(p.pool)
	return p
}

// next returns message i's payload, valid until the next call.
func (p *payloads) next(i int) []byte {
	if p.fixed != nil {
		return p.fixed
	}
	off := (i * 7919) % (len(p.pool) - p.size)
	b := p.pool[off : off+p.size]
	if !p.stamped || p.size < 8 {
		return b
	}
	copy(p.scratch, b)
	binary.LittleEndian.PutUint64(p.scratch, uint64(time.Now().UnixNano()))
	return p.scratch
}

// pacer spaces messages by scheduling message i at start + i/rate, as
// syncpub --rate does, so short stalls are caught up rather than added.
type pacer struct {
	rate  float64
	start time.Time
}

func (p *pacer) wait(i int) {
	if p.rate <= 0 {
		return
	}
	if i == 0 {
		p.start = time.Now()
		return
	}
	if d := time.Until(p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))); d > 0 {
		time.Sleep(d)
	}
}

// flagSet returns a flag set for a mode that exits on bad flags.
func flagSet(name string) *flag.FlagSet { return flag.NewFlagSet(name, flag.ExitOnError) }
