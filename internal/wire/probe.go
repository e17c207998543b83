package wire

import "context"

// Probe reports whether something accepts connections at ep, a tcp://,
// tls://, ipc:// or inproc:// endpoint: it connects and closes the
// connection at once, before any greeting (on tls://, before TLS), so a
// server sees a connection that ended and counts no request. A nil error
// means a listener was there when it looked.
func Probe(ctx context.Context, ep string) error {
	e, err := parseEndpoint(ep)
	if err != nil {
		return err
	}
	// On tls:// the TCP connection alone says whether anyone listens.
	nc, err := target{scheme: e.scheme, addr: e.addr}.dial(ctx, false)
	if err != nil {
		return err
	}
	return nc.Close()
}
