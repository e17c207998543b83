package wire

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestIPCSendBuffer: PubConfig.SendBuffer sets an ipc:// connection's
// kernel send buffer as a TCP one's; the kernel clamps it to
// net.core.wmem_max and doubles it.
func TestIPCSendBuffer(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/core/wmem_max")
	if err != nil {
		t.Skipf("no wmem_max: %v", err)
	}
	wmemMax, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		cfg  int
		want int
	}{
		{"configured", 300 << 10, 300 << 10},
	} {
		p, _ := pubSubOver(t, "ipc://"+filepath.Join(dir, c.name+".sock"), PubConfig{SendBuffer: c.cfg}, SubConfig{Borrow: true})
		peers := *p.snap.Load()
		if len(peers) != 1 {
			t.Fatalf("%s: %d connections", c.name, len(peers))
		}
		rc, err := peers[0].nc.(*net.UnixConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var gerr error
		if err := rc.Control(func(fd uintptr) {
			got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		}); err != nil || gerr != nil {
			t.Fatal(err, gerr)
		}
		if want := 2 * min(c.want, wmemMax); got != want {
			t.Errorf("%s: SO_SNDBUF %d, want %d", c.name, got, want)
		}
		p.Close()
	}
}
