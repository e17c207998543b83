package wire

import (
	"net"
	"net/netip"
	"sync"
)

// ipLimiter counts open connections per source IP address and refuses
// one beyond max. Its map holds only addresses with open connections, so
// it is bounded by the connection limits themselves.
type ipLimiter struct {
	max int

	mu sync.Mutex
	n  map[netip.Addr]int
}

func newIPLimiter(max int) *ipLimiter {
	return &ipLimiter{max: max, n: make(map[netip.Addr]int)}
}

// sourceIP returns the IP address a connection came from (IPv4-mapped
// IPv6 addresses unmapped, so one host counts once).
func sourceIP(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// acquire counts one more connection from ip unless ip has max already.
func (l *ipLimiter) acquire(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] >= l.max {
		return false
	}
	l.n[ip]++
	return true
}

// release counts one connection from ip less.
func (l *ipLimiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip]--; l.n[ip] <= 0 {
		delete(l.n, ip)
	}
}
