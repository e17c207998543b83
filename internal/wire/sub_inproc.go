package wire

import (
	"context"
	"fmt"
	"time"
)

// readBatches is readBorrowed for an inproc:// connection: what the Pub
// sends arrives as batches of its own messages on the batch lane, and
// each batch goes to the consumer as one Messages delivery whose frames
// are the Pub's, not copies. Release hands the batch back. At most
// subReadBuffers deliveries are lent at once, as on a socket; the lane's
// window holds the rest, and then the Pub's writer waits (and cuts this
// subscriber after its SlowTimeout, like a stalled TCP reader).
func (s *Sub) readBatches(ctx context.Context, mc *memConn, endpoint string) error {
	// Frames are the Pub's messages, bounded by its own limits; the Sub's
	// are applied all the same, so inproc:// accepts what tcp:// accepts.
	maxFrame := s.cfg.MaxFrame
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	home := make(chan *readBuf, subReadBuffers)
	for range subReadBuffers {
		home <- &readBuf{home: home}
	}
	stop := context.AfterFunc(ctx, func() { mc.Close() })
	defer stop()
	var deadline readDeadline
	for {
		if err := deadline.extend(mc, s.cfg.IdleTimeout); err != nil {
			return err
		}
		b, err := mc.in.recvBatch()
		var rb *readBuf
		if err == nil {
			select {
			case rb = <-home:
			default:
				s.behindAt.Store(time.Now().UnixNano())
				select {
				case rb = <-home:
				case <-ctx.Done():
					b.release()
					return nil
				}
			}
			rb.batch = b
			err = bundleBatch(&rb.Bundle, b, maxFrame, DefaultMaxFrames)
		}
		if err != nil {
			if rb != nil {
				Delivery{buf: rb}.Release()
			}
			if ctx.Err() != nil {
				return nil
			}
			// Behind also when the consumer held the lane's whole window:
			// the Pub's writer waited for it, and may have cut it for that.
			behind := time.Since(time.Unix(0, max(s.behindAt.Load(), mc.in.fullSince()))) < behindWindow
			s.deliver(ctx, Delivery{Kind: Disconnected, Endpoint: endpoint, Err: err, Behind: behind})
			return fmt.Errorf("%w: %v", errSessionEnded, err)
		}
		if !s.deliver(ctx, Delivery{Kind: Messages, Endpoint: endpoint, Msgs: &rb.Bundle, InProcess: true, buf: rb}) {
			Delivery{buf: rb}.Release()
			return nil
		}
	}
}

// bundleBatch lends b's messages through bundle, checking the limits a
// socket reader checks.
func bundleBatch(bundle *Bundle, b *inprocBatch, maxFrame, maxFrames int) error {
	for _, m := range b.msgs {
		if len(m.Frames) > maxFrames {
			return fmt.Errorf("%w: limit %d", ErrTooManyFrames, maxFrames)
		}
		for _, f := range m.Frames {
			if len(f) > maxFrame {
				return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(f), maxFrame)
			}
		}
		bundle.frames = append(bundle.frames, m.Frames...)
		bundle.ends = append(bundle.ends, len(bundle.frames))
	}
	return nil
}
