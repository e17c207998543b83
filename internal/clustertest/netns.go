package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Lab is a set of Linux network namespaces, one per simulated host, each
// with one address on a shared bridge, so tests can run nodes on
// "different machines" and cut one off. Traffic stays inside namespaces
// the test created; addresses come from TEST-NET-1 (192.0.2.0/24), which
// is never routed. Needs root and iproute2; NewLab skips the test with the
// reason otherwise.
type Lab struct {
	t      testing.TB
	prefix string
	hub    string
	hosts  []string
}

// NewLab creates a namespace per host name plus a hub namespace holding
// the bridge. Everything is removed when the test ends.
func NewLab(t testing.TB, hosts ...string) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need iproute2's ip command")
	}
	l := &Lab{t: t, prefix: fmt.Sprintf("smq%d", os.Getpid()), hosts: hosts}
	l.hub = l.prefix + "-hub"
	if out, err := exec.Command("ip", "netns", "add", l.hub).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespaces here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(l.remove)
	l.run("ip", "-n", l.hub, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", l.hub, "link", "set", "br0", "up")
	for i, h := range hosts {
		ns, veth, port := l.NS(h), fmt.Sprintf("%s-v%d", l.prefix, i), fmt.Sprintf("%s-p%d", l.prefix, i)
		l.run("ip", "netns", "add", ns)
		l.run("ip", "link", "add", veth, "type", "veth", "peer", "name", port)
		l.run("ip", "link", "set", veth, "netns", ns)
		l.run("ip", "link", "set", port, "netns", l.hub)
		l.run("ip", "-n", l.hub, "link", "set", port, "master", "br0")
		l.run("ip", "-n", l.hub, "link", "set", port, "up")
		l.run("ip", "-n", ns, "link", "set", "lo", "up")
		l.run("ip", "-n", ns, "link", "set", veth, "name", "eth0")
		l.run("ip", "-n", ns, "addr", "add", l.Addr(h)+"/24", "dev", "eth0")
		l.run("ip", "-n", ns, "link", "set", "eth0", "up")
	}
	return l
}

func (l *Lab) index(host string) int {
	for i, h := range l.hosts {
		if h == host {
			return i
		}
	}
	l.t.Fatalf("lab has no host %q", host)
	return -1
}

// NS returns the namespace name of host.
func (l *Lab) NS(host string) string { return fmt.Sprintf("%s-%s", l.prefix, host) }

// Addr returns host's IP address.
func (l *Lab) Addr(host string) string { return fmt.Sprintf("192.0.2.%d", l.index(host)+1) }

// Exec returns the command line prefix that runs a program on host.
func (l *Lab) Exec(host string) []string { return []string{"ip", "netns", "exec", l.NS(host)} }

// Partition cuts host off the bridge: its packets, both ways, are lost,
// as with a pulled cable; its connections stay open on both sides.
func (l *Lab) Partition(host string) {
	l.run("ip", "-n", l.hub, "link", "set", fmt.Sprintf("%s-p%d", l.prefix, l.index(host)), "down")
}

// Heal reconnects host.
func (l *Lab) Heal(host string) {
	l.run("ip", "-n", l.hub, "link", "set", fmt.Sprintf("%s-p%d", l.prefix, l.index(host)), "up")
}

func (l *Lab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// remove deletes every namespace; their veth pairs go with them.
func (l *Lab) remove() {
	for _, h := range l.hosts {
		_ = exec.Command("ip", "netns", "del", l.NS(h)).Run()
	}
	_ = exec.Command("ip", "netns", "del", l.hub).Run()
}
