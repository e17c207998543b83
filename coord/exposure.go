package coord

import (
	"net"

	"go.uber.org/zap"
)

// warnIfExposed logs one line at start when the publisher has no TLS and
// an endpoint listens beyond loopback (a wildcard address included):
// whoever reaches it can read the stream, join the quorum under any name,
// say BYE for another and fetch the history. Plain tcp:// is meant for
// loopback and trusted networks.
func (p *Publisher) warnIfExposed() {
	if p.cfg.TLS != nil {
		return
	}
	addrs := []net.Addr{p.pub.Addr(), p.sync.Addr()}
	if p.rec != nil {
		addrs = append(addrs, p.rec.srv.Addr())
	}
	var exposed []string
	for _, a := range addrs {
		if ta, ok := a.(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			exposed = append(exposed, a.String())
		}
	}
	if len(exposed) > 0 {
		p.lg.Warn("endpoints listen beyond loopback without TLS: anyone who reaches them can read the stream, join the quorum under any name and fetch history (docs/security.md)",
			zap.Strings("addresses", exposed))
	}
}
