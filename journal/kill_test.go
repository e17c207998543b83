package journal_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncmq/syncmq/journal"
)

// childEnv names the journal directory a child process (this test binary
// re-executed) appends to until it is killed.
const childEnv = "SYNCMQ_JOURNAL_TEST_CHILD"

// appendUntilKilled is the child: it opens the journal, begins a new
// epoch, and appends batches to topics "a" and "bb", printing
// "<epoch> <topic> <last seq>" after each Append returned.
func appendUntilKilled(dir string) int {
	cfg := journal.DefaultConfig()
	cfg.Publisher = testPub
	cfg.SegmentBytes = 64 << 10 // roll often
	j, err := journal.Open(dir, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	epoch := j.NextEpoch(uint64(time.Now().UnixNano()))
	if err := j.Begin(epoch); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	next := map[string]uint64{"a": 1, "bb": 1}
	for i := 0; i < 10_000_000; i++ {
		topic := "a"
		if i%3 == 0 {
			topic = "bb"
		}
		count := 1 + i%5
		if err := j.Append(frames(epoch, topic, next[topic], count, -1)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		next[topic] += uint64(count)
		fmt.Fprintf(os.Stdout, "%d %s %d\n", epoch, topic, next[topic]-1)
	}
	return 0
}

// TestKilledProcess kills a process appending to a journal with SIGKILL,
// three times, and checks after each kill that every batch whose Append
// had returned is in the journal (the page cache survives a process
// crash), each stream a contiguous run from 1, and the killed epoch
// reported as crashed.
func TestKilledProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		must(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		must(t, cmd.Start())
		acked := map[string]uint64{}
		var epoch uint64
		sc := bufio.NewScanner(out)
		lines := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			epoch, _ = strconv.ParseUint(f[0], 10, 64)
			acked[f[1]], _ = strconv.ParseUint(f[2], 10, 64)
			if lines++; lines == 3000+round*1000 {
				must(t, cmd.Process.Signal(syscall.SIGKILL))
			}
		}
		if err := cmd.Wait(); err == nil || lines < 3000 {
			t.Fatalf("round %d: child ended with %v after %d lines: %s", round, err, lines, stderr.String())
		}

		j, err := journal.Open(dir, testConfig())
		must(t, err)
		for topic, last := range acked {
			rs, rng := readAll(t, j, epoch, topic)
			checkPayloads(t, topic, rs, -1)
			if rng.Final < last || !rng.Closed || rng.Clean {
				t.Fatalf("round %d %s: acked up to %d, range %+v", round, topic, last, rng)
			}
			if !slices.Equal(seqs(rs), span(1, rng.Final)) {
				t.Fatalf("round %d %s: not contiguous from 1 to %d", round, topic, rng.Final)
			}
		}
		if eps := j.Epochs(); len(eps) != round+1 {
			t.Fatalf("round %d: %d epochs", round, len(eps))
		}
		st := j.Stats()
		t.Logf("round %d: killed after %d acks; acked %v; reopen: %d segments (%d scanned), torn tails %d (%d bytes)",
			round, lines, acked, st.Segments, st.Scanned, st.TornTails, st.TornBytes)
		must(t, j.Close())
	}
}
