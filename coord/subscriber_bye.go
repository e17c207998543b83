package coord

import (
	"context"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"
	"go.uber.org/zap"
)

// ByeHook is called before a Subscriber's BYE to a publisher goes out
// (see HoldBye). It returns how many records, beyond those this
// subscriber was told it lost, the BYE reports lost.
type ByeHook func(ctx context.Context, publisher envelope.ID, epoch uint64) (lost uint64)

// HoldBye makes every BYE wait for hook: once a publisher's END was
// delivered (every record up to it delivered or reported lost), the BYE
// that confirms it to the publisher is sent only when hook returns, with
// the losses it adds. A relay uses it to confirm upstream only once its
// own subscribers confirmed downstream. hook runs on a goroutine of its
// own; ctx ends at Close (the BYE then reports what the hook returns). Call it before
// the first END can arrive (right after NewSubscriber); nil removes it.
func (s *Subscriber) HoldBye(hook ByeHook) {
	if hook == nil {
		s.byeHook.Store(nil)
		return
	}
	s.byeHook.Store(&hook)
}

// sendBye sends the BYE to ps, at once or, with a ByeHook, once the hook
// returned. The hook and the BYE run on a goroutine of their own, so run
// goes on, and Close waits for the BYE to be delivered or to fail.
func (s *Subscriber) sendBye(ps *pubState) {
	h := s.byeHook.Load()
	if h == nil {
		s.io.bye(ps.link, s.byeRequest(ps))
		return
	}
	l, r := ps.link, s.bye(ps)
	s.g.Go(func() {
		// The hook reports what it could not confirm, also when Close
		// ended it: the BYE then says so.
		r.Lost += (*h)(s.ctx, r.id, r.epoch)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.HandshakeAttempts)*s.cfg.HandshakeTimeout)
		defer cancel()
		if _, err := l.sync.Request(ctx, [][]byte{handshake.Encode(r.Ready)}); err != nil {
			s.lg.Debug("bye not delivered", zap.Error(err))
		}
	})
}
