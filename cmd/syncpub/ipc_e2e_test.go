package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/proctest"
)

// TestZguideJobIPC runs the zguide job as separate processes over ipc://
// (Unix domain sockets): every subscriber gets every update and exits 0,
// and the publisher removes its socket files when it exits.
func TestZguideJobIPC(t *testing.T) {
	count, subs := 200_000, 3
	if testing.Short() {
		count = 50_000
	}
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	pubEP, syncEP, recEP := "ipc://"+filepath.Join(dir, "a.sock"), "ipc://"+filepath.Join(dir, "b.sock"), "ipc://"+filepath.Join(dir, "c.sock")
	var procs []*proctest.Proc
	for i := 0; i < subs; i++ {
		procs = append(procs, proctest.Start(t, ctx, syncsub, "--connect", pubEP, "--sync", syncEP,
			"--output", "count", "--id", fmt.Sprintf("sub-%d", i), "--log-level", "warn"))
	}
	pub := proctest.Start(t, ctx, syncpub, "--bind", pubEP, "--sync-bind", syncEP, "--recovery-bind", recEP,
		"--expect", fmt.Sprint(subs), "--count", fmt.Sprint(count), "--payload", "Rhubarb", "--log-level", "warn")
	if code := pub.Wait(ctx); code != 0 {
		t.Fatalf("syncpub exited %d: %s", code, pub.Stderr.String())
	}
	for i, p := range procs {
		if code := p.Wait(ctx); code != 0 || !zguideOK(p.Stdout.String(), count) {
			t.Errorf("syncsub %d exited %d, printed %q, stderr %s", i, code, p.Stdout.String(), p.Stderr.String())
		}
	}
	for _, name := range []string{"a.sock", "b.sock", "c.sock"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after exit: %v", name, err)
		}
	}
}

// TestBadLocalEndpoints: ipc:// and inproc:// endpoints that cannot work
// are one-line errors at --check-config, exit 2.
func TestBadLocalEndpoints(t *testing.T) {
	syncpub, syncsub := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	long := "ipc:///" + strings.Repeat("a", 107)
	tests := []struct {
		bin  string
		args []string
		want string
	}{
		{syncpub, []string{"--bind", long}, "ipc path of 108 bytes, at most 107"},
		{syncpub, []string{"--sync-bind", "inproc://"}, "inproc:// needs a name"},
		{syncpub, []string{"--recovery-bind", "ipx:///tmp/r.sock"}, `unknown scheme "ipx"`},
		{syncpub, []string{"--bind", "ipc:///tmp/a.sock?mode=0999"}, "not octal"},
		{syncsub, []string{"--connect", long}, "ipc path of 108 bytes"},
		{syncsub, []string{"--sync", "inproc://"}, "inproc:// needs a name"},
		{syncsub, []string{"--connect", "ipc:///tmp/a.sock?mode=0660"}, "connect to the path alone"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			p := proctest.Start(t, ctx, tt.bin, append(tt.args, "--check-config")...)
			code := p.Wait(ctx)
			msg := p.Stderr.String()
			if code != 2 || !strings.Contains(msg, tt.want) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line containing %q", code, msg, tt.want)
			}
		})
	}
}
