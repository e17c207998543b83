package wire

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
)

// source is where a connection comes from, as the per-address limits
// (MaxConnsPerIP, MaxPendingPerIP and the Server's) count it: its IP
// address on tcp:// and tls://; on ipc:// the user id of the connecting
// process (SO_PEERCRED, so each local user is one "address"; where the
// system does not say, all ipc:// peers are one); on inproc:// the
// process itself, one "address" for all.
type source struct {
	ip    netip.Addr
	local string
}

func (s source) String() string {
	if s.local != "" {
		return s.local
	}
	return s.ip.String()
}

// sourceOf returns where nc came from (IPv4-mapped IPv6 addresses
// unmapped, so one host counts once).
func sourceOf(nc net.Conn) source {
	switch c := nc.(type) {
	case *net.UnixConn:
		if uid, ok := peerUID(c); ok {
			return source{local: "ipc uid=" + strconv.FormatUint(uint64(uid), 10)}
		}
		return source{local: "ipc"}
	case *memConn:
		return source{local: "inproc"}
	}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return source{ip: ta.AddrPort().Addr().Unmap()}
	}
	return source{}
}

// remoteOf names the peer of nc in PeerEvents, Requests and logs: its
// address and port on tcp:// and tls://, its source on ipc:// and
// inproc:// (a Unix socket's peer has no address of its own). A name
// without a colon is a host of its own to recovery.HostKey.
func remoteOf(nc net.Conn, src source) string {
	if src.local != "" {
		return src.local
	}
	return nc.RemoteAddr().String()
}

// ipLimiter counts open connections per source and refuses one beyond
// max. Its map holds only sources with open connections, so it is
// bounded by the connection limits themselves.
type ipLimiter struct {
	max int

	mu sync.Mutex
	n  map[source]int
}

func newIPLimiter(max int) *ipLimiter {
	return &ipLimiter{max: max, n: make(map[source]int)}
}

// acquire counts one more connection from ip unless ip has max already.
func (l *ipLimiter) acquire(ip source) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip] >= l.max {
		return false
	}
	l.n[ip]++
	return true
}

// release counts one connection from ip less.
func (l *ipLimiter) release(ip source) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ip]--; l.n[ip] <= 0 {
		delete(l.n, ip)
	}
}
