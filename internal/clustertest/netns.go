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
	l.run("ip", "-n", l.hub, "link", "set", l.port(host), "down")
}

// Heal reconnects host.
func (l *Lab) Heal(host string) {
	l.run("ip", "-n", l.hub, "link", "set", l.port(host), "up")
}

// port is the name of host's port on the bridge, in the hub namespace.
func (l *Lab) port(host string) string { return fmt.Sprintf("%s-p%d", l.prefix, l.index(host)) }

// linkEnds are the two devices of host's link: its eth0 and its bridge
// port, each as the namespace it lives in and its name.
func (l *Lab) linkEnds(host string) [2][2]string {
	return [2][2]string{{l.NS(host), "eth0"}, {l.hub, l.port(host)}}
}

// Lose drops about percent of the packets host sends and of those it
// receives, at random. A kernel may have no netem; each of the two
// devices (host's eth0 and its bridge port) gets an htb root whose
// default class passes everything and whose second class, fed by a
// classic BPF filter that matches when the kernel's random number falls
// below the share, has a queue of length 0. It reports false, changing
// nothing more, if the kernel lacks htb, pfifo or the bpf classifier.
func (l *Lab) Lose(host string, percent float64) bool {
	l.t.Helper()
	share := uint64(percent / 100 * (1 << 32))
	// ld rand (SKF_AD_OFF + SKF_AD_RANDOM); if A > share: no match;
	// else -1: the filter's classid.
	prog := fmt.Sprintf("4,32 0 0 %d,37 1 0 %d,6 0 0 4294967295,6 0 0 0", uint32(0xfffff038), min(share, 1<<32-1))
	for _, end := range l.linkEnds(host) {
		ns, name := end[0], end[1]
		for _, args := range [][]string{
			{"qdisc", "add", "dev", name, "root", "handle", "1:", "htb", "default", "10"},
			{"class", "add", "dev", name, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit"},
			{"class", "add", "dev", name, "parent", "1:", "classid", "1:20", "htb", "rate", "10gbit"},
			{"qdisc", "add", "dev", name, "parent", "1:20", "handle", "20:", "pfifo", "limit", "0"},
			{"filter", "add", "dev", name, "parent", "1:", "protocol", "all", "prio", "1", "bpf", "bytecode", prog, "classid", "1:20"},
		} {
			if out, err := exec.Command("tc", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
				l.t.Logf("tc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
				return false
			}
		}
	}
	return true
}

// Dropped returns how many packets Lose has dropped on host's two
// devices so far.
func (l *Lab) Dropped(host string) int {
	n := 0
	for _, end := range l.linkEnds(host) {
		out, err := exec.Command("tc", "-n", end[0], "-s", "qdisc", "show", "dev", end[1], "parent", "1:20").Output()
		if err != nil {
			continue
		}
		if _, rest, ok := strings.Cut(string(out), "dropped "); ok {
			var d int
			if _, err := fmt.Sscanf(rest, "%d", &d); err == nil {
				n += d
			}
		}
	}
	return n
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
