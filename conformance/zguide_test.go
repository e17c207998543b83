package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/internal/clustertest"
	"github.com/syncmq/syncmq/internal/proctest"
)

// zguideJob is the size of the zguide job the tests run: 3 x 100,000 by
// default, the zguide's own 10 x 1,000,000 with SYNCMQ_ZGUIDE_FULL=1.
func zguideJob() (subs, count int) {
	if os.Getenv("SYNCMQ_ZGUIDE_FULL") == "1" {
		return 10, 1_000_000
	}
	return 3, 100_000
}

// classic is one implementation of the zguide's syncpub and syncsub.
type classic struct {
	name string
	pub  func(pub, sync string, subs, count int) []string // argv
	sub  func(pub, sync string) []string
}

func classics(t *testing.T) []classic {
	cs := []classic{{
		name: "pyzmq",
		pub: func(pub, sync string, subs, count int) []string {
			return []string{python, script("zguide/syncpub.py"), pub, sync, fmt.Sprint(subs), fmt.Sprint(count)}
		},
		sub: func(pub, sync string) []string { return []string{python, script("zguide/syncsub.py"), pub, sync} },
	}}
	if bin := cZguide(t); bin != "" {
		cs = append(cs, classic{
			name: "C",
			pub: func(pub, sync string, subs, count int) []string {
				return []string{filepath.Join(bin, "zsyncpub"), pub, sync, fmt.Sprint(subs), fmt.Sprint(count), "Rhubarb"}
			},
			sub: func(pub, sync string) []string { return []string{filepath.Join(bin, "zsyncsub"), pub, sync} },
		})
	}
	return cs
}

// TestZguideClassicSubscribersAgainstSyncpub runs the zguide's plain
// syncsub, unchanged, against syncpub --compat zguide: each must count
// every update and see the bare END.
func TestZguideClassicSubscribersAgainstSyncpub(t *testing.T) {
	needPyzmq(t)
	syncpub, _ := proctest.Binaries(t)
	subs, count := zguideJob()
	for _, c := range classics(t) {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
			defer cancel()
			pub, sync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
			p := start(t, ctx, syncpub, "--compat", "zguide", "--bind", pub, "--sync-bind", sync, "--expect", fmt.Sprint(subs),
				"--count", fmt.Sprint(count), "--slow-timeout", "30s", "--log-level", "warn")
			var ss []*proctest.Proc
			for range subs {
				argv := c.sub(pub, sync)
				ss = append(ss, start(t, ctx, argv[0], argv[1:]...))
			}
			for i, s := range ss {
				wait(t, ctx, fmt.Sprint(c.name, " syncsub ", i), s, 0)
				if got, want := strings.TrimSpace(s.Stdout.String()), fmt.Sprintf("Received %d updates", count); got != want {
					t.Fatalf("%s syncsub %d printed %q, want %q", c.name, i, got, want)
				}
			}
			wait(t, ctx, "syncpub --compat zguide", p, 0)
		})
	}
}

// TestSyncsubAgainstZguideClassicPublisher runs syncsub --compat zguide
// against the zguide's plain syncpub, unchanged: it sends the empty sync
// request and counts the one-frame updates until END.
func TestSyncsubAgainstZguideClassicPublisher(t *testing.T) {
	needPyzmq(t)
	_, syncsub := proctest.Binaries(t)
	subs, count := zguideJob()
	for _, c := range classics(t) {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
			defer cancel()
			pub, sync := clustertest.FreeEndpoint(t), clustertest.FreeEndpoint(t)
			argv := c.pub(pub, sync, subs, count)
			p := start(t, ctx, argv[0], argv[1:]...)
			var ss []*proctest.Proc
			for range subs {
				ss = append(ss, start(t, ctx, syncsub, "--compat", "zguide", "--connect", pub, "--sync", sync, "--output", "count", "--log-level", "warn"))
			}
			for i, s := range ss {
				wait(t, ctx, fmt.Sprint("syncsub --compat zguide ", i), s, 0)
				if got, want := strings.TrimSpace(s.Stdout.String()), fmt.Sprintf("Received %d updates", count); got != want {
					t.Fatalf("syncsub %d printed %q, want %q", i, got, want)
				}
			}
			wait(t, ctx, c.name+" syncpub", p, 0)
		})
	}
}

// TestZguideOverIPC runs the zguide job over ipc:// both ways with the
// pyzmq ports, unchanged: the classic syncsub against syncpub --compat
// zguide, and syncsub --compat zguide against the classic syncpub.
// libzmq's ipc:// is ZMTP over a Unix socket, as wire's is.
func TestZguideOverIPC(t *testing.T) {
	needPyzmq(t)
	syncpub, syncsub := proctest.Binaries(t)
	const subs, count = 2, 10_000
	want := fmt.Sprintf("Received %d updates", count)
	t.Run("classic-syncsub", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		dir := t.TempDir()
		pub, sync := "ipc://"+filepath.Join(dir, "pub.sock"), "ipc://"+filepath.Join(dir, "sync.sock")
		p := start(t, ctx, syncpub, "--compat", "zguide", "--bind", pub, "--sync-bind", sync, "--expect", fmt.Sprint(subs),
			"--count", fmt.Sprint(count), "--slow-timeout", "30s", "--log-level", "warn")
		var ss []*proctest.Proc
		for range subs {
			ss = append(ss, start(t, ctx, python, script("zguide/syncsub.py"), pub, sync))
		}
		for i, s := range ss {
			wait(t, ctx, fmt.Sprint("pyzmq syncsub ", i), s, 0)
			if got := strings.TrimSpace(s.Stdout.String()); got != want {
				t.Fatalf("pyzmq syncsub %d printed %q, want %q", i, got, want)
			}
		}
		wait(t, ctx, "syncpub --compat zguide", p, 0)
	})
	t.Run("classic-syncpub", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		dir := t.TempDir()
		pub, sync := "ipc://"+filepath.Join(dir, "pub.sock"), "ipc://"+filepath.Join(dir, "sync.sock")
		p := start(t, ctx, python, script("zguide/syncpub.py"), pub, sync, fmt.Sprint(subs), fmt.Sprint(count))
		var ss []*proctest.Proc
		for range subs {
			ss = append(ss, start(t, ctx, syncsub, "--compat", "zguide", "--connect", pub, "--sync", sync, "--output", "count", "--log-level", "warn"))
		}
		for i, s := range ss {
			wait(t, ctx, fmt.Sprint("syncsub --compat zguide ", i), s, 0)
			if got := strings.TrimSpace(s.Stdout.String()); got != want {
				t.Fatalf("syncsub %d printed %q, want %q", i, got, want)
			}
		}
		wait(t, ctx, "pyzmq syncpub", p, 0)
	})
}
