package coord

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/handshake"
)

// handleSync answers READY and BYE requests on the sync endpoint.
func (p *Publisher) handleSync(_ context.Context, wr wire.Request, reply func(...[]byte) error) error {
	req := wr.Frames
	if wr.TooLarge {
		return reply(p.refuse(handshake.CodeMalformed, fmt.Sprintf("request of %d bytes is over the size limit", wr.Size)))
	}
	if len(req) != 1 {
		return reply(p.refuse(handshake.CodeMalformed, fmt.Sprintf("request has %d frames, want 1", len(req))))
	}
	r, err := handshake.DecodeReady(req[0])
	if err != nil {
		var he *handshake.Error
		errors.As(err, &he)
		return reply(p.refuse(he.Code, he.Msg))
	}
	var answer any
	var evs []coreEvent
	p.mu.Lock()
	if r.Type == handshake.TypeBye {
		answer = p.core.bye(r, wr.Peer.Identity)
	} else {
		answer = p.core.ready(r, wr.Peer.Identity, time.Now())
	}
	evs = p.core.takeEvents(evs)
	p.noteChangeLocked()
	p.mu.Unlock()
	if ack, ok := answer.(handshake.Ack); ok {
		p.handshakes.Add(1)
		if ack.From > 0 {
			signal(p.wake) // run starts feeding the history
		}
	}
	p.logEvents(evs)
	return reply(handshake.Encode(answer))
}

// refuse answers a request that did not decode; the core counts it.
func (p *Publisher) refuse(code, msg string) []byte {
	var r handshake.ErrorReply
	var evs []coreEvent
	p.mu.Lock()
	r = p.core.refuse(code, msg)
	evs = p.core.takeEvents(evs)
	p.mu.Unlock()
	p.logEvents(evs)
	return handshake.Encode(r)
}
