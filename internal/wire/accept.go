package wire

import (
	"errors"
	"net"
	"time"
)

// acceptLoop accepts connections on ln and hands each to admit until ln
// is closed or admit returns false. A transient Accept error (EMFILE and
// the like) is retried after a short pause unless done is closed. The
// handshake never runs here: admit must start it on its own goroutine,
// so a silent client cannot hold up the next one.
func acceptLoop(ln net.Listener, done <-chan struct{}, admit func(net.Conn) bool) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if !admit(nc) {
			return
		}
	}
}
