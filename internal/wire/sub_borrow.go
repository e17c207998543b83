package wire

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// A Sub with SubConfig.Borrow lends its read buffers instead of copying
// frames out of them: each read from the connection is parsed where it
// landed, and the complete messages it brought go to the consumer as one
// Messages delivery whose frames alias the buffer. The reader carries on
// in another buffer; the consumer's Release hands the first one back.
// Per message this saves a copy of every byte, an allocation and a
// channel operation (one per read instead), which is most of what a
// subscriber spends on small messages.

// Borrowed read buffers: a connection owns at most subReadBuffers of
// subReadBufferSize bytes, allocated as needed, so the reader can fill one
// while the consumer works through the others. A buffer holds several of
// the largest batches a syncmq publisher sends by default (64 KiB of
// payload); a larger message gets a buffer of its own size, which is not
// reused.
const (
	subReadBuffers    = 4
	subReadBufferSize = 256 << 10
)

// Bundle is the messages of one Messages delivery. Their frames alias a
// buffer the Sub lends until Delivery.Release.
type Bundle struct {
	frames [][]byte
	ends   []int // ends[i] is the index in frames after message i
}

// Len returns the number of messages.
func (b *Bundle) Len() int { return len(b.ends) }

// Msg returns the frames of message i. They are valid until Release.
func (b *Bundle) Msg(i int) [][]byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.frames[start:b.ends[i]:b.ends[i]]
}

// readBuf is one lendable buffer and the bundle parsed from it.
type readBuf struct {
	Bundle
	data []byte
	home chan *readBuf // where Release returns it; nil for a one-off buffer
	// batch is the inproc batch whose messages the bundle lends (inproc://
	// only): Release hands them back to the Pub.
	batch *inprocBatch
}

func (rb *readBuf) reset() {
	clear(rb.frames)
	rb.frames, rb.ends = rb.frames[:0], rb.ends[:0]
}

// Release gives a Messages delivery's buffer back to its connection; the
// frames of its messages are invalid from then on. It must be called once
// for every Messages delivery, from any goroutine; for other deliveries
// it does nothing.
func (d Delivery) Release() {
	if d.buf == nil || d.buf.home == nil {
		return
	}
	if b := d.buf.batch; b != nil {
		d.buf.batch = nil
		b.release()
	}
	d.buf.reset()
	select {
	case d.buf.home <- d.buf:
	default: // cannot happen: home holds every buffer of its connection
	}
}

// readBorrowed reads messages from nc into lent buffers and delivers
// them, until the connection fails or ctx ends. It returns like session.
func (s *Sub) readBorrowed(ctx context.Context, nc net.Conn, endpoint string) error {
	home := make(chan *readBuf, subReadBuffers)
	made := 0
	// get returns a free buffer, waiting for the consumer to release one
	// when all are lent.
	get := func() *readBuf {
		select {
		case rb := <-home:
			return rb
		default:
		}
		if made < subReadBuffers {
			made++
			return &readBuf{data: make([]byte, subReadBufferSize), home: home}
		}
		s.behindAt.Store(time.Now().UnixNano())
		select {
		case rb := <-home:
			return rb
		case <-ctx.Done():
			return nil
		}
	}
	maxFrame := s.cfg.MaxFrame
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	cur := get()
	end := 0 // cur.data[:end] holds bytes read and not yet delivered
	var deadline readDeadline
	for {
		if err := deadline.extend(nc, s.cfg.IdleTimeout); err != nil {
			return err
		}
		n, err := nc.Read(cur.data[end:])
		end += n
		var used, need int
		if n > 0 {
			used, need, err = parseMsgs(&cur.Bundle, cur.data[:end], maxFrame, DefaultMaxFrames, err)
		}
		if len(cur.ends) > 0 {
			if !s.deliver(ctx, Delivery{Kind: Messages, Endpoint: endpoint, Msgs: &cur.Bundle, buf: cur}) {
				return nil
			}
			next := get() // may be cur itself, once released
			if next == nil {
				return nil
			}
			// The partial message after the delivered ones moves on; the
			// consumer only reads what comes before it.
			end = copy(next.data, cur.data[used:end])
			cur = next
		}
		if err != nil {
			if err == io.EOF && end > 0 {
				err = io.ErrUnexpectedEOF // inside a message
			}
			behind := time.Since(time.Unix(0, s.behindAt.Load())) < behindWindow
			s.deliver(ctx, Delivery{Kind: Disconnected, Endpoint: endpoint, Err: err, Behind: behind})
			return fmt.Errorf("%w: %v", errSessionEnded, err)
		}
		if need > len(cur.data) {
			// A message larger than the buffer: a buffer of its own.
			big := &readBuf{data: make([]byte, need)}
			copy(big.data, cur.data[:end])
			if cur.home != nil {
				cur.home <- cur
			}
			cur = big
		}
	}
}

// parseMsgs appends to b the complete messages at the start of data,
// skipping commands, and returns the bytes they took. need is the size a
// buffer must have to hold the message that follows, as far as its frame
// headers tell. A frame over maxFrame or a message of more than maxFrames
// frames is an error; readErr, the error of the read that brought data,
// is returned when parsing finds none. need counts from used.
func parseMsgs(b *Bundle, data []byte, maxFrame, maxFrames int, readErr error) (used, need int, err error) {
	for {
		start := len(b.frames)
		p, n := used, 0
		for {
			if p >= len(data) {
				b.frames = b.frames[:start]
				return used, p + 2 - used, readErr
			}
			flags := data[p]
			var size uint64
			hdr := 2
			if flags&flagLong != 0 {
				hdr = 9
				if p+hdr > len(data) {
					b.frames = b.frames[:start]
					return used, p + hdr - used, readErr
				}
				size = binary.BigEndian.Uint64(data[p+1:])
			} else {
				if p+hdr > len(data) {
					b.frames = b.frames[:start]
					return used, p + hdr - used, readErr
				}
				size = uint64(data[p+1])
			}
			if size > uint64(maxFrame) {
				b.frames = b.frames[:start]
				return used, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, maxFrame)
			}
			cmd := flags&flagCommand != 0
			if n == maxFrames {
				b.frames = b.frames[:start]
				return used, 0, fmt.Errorf("%w: limit %d", ErrTooManyFrames, maxFrames)
			}
			bodyEnd := p + hdr + int(size)
			if bodyEnd > len(data) {
				b.frames = b.frames[:start]
				// Room for the frame and the next one's header.
				return used, bodyEnd + 9 - used, readErr
			}
			if cmd {
				// A command (a ZMTP 3.1 PING, say) is one frame of its
				// own; PUB sends none we act on. Inside a message it is a
				// broken peer's: the frame reader drops both, so do we.
				b.frames = b.frames[:start]
				p = bodyEnd
				break
			}
			b.frames = append(b.frames, data[p+hdr:bodyEnd:bodyEnd])
			n++
			p = bodyEnd
			if flags&flagMore == 0 {
				b.ends = append(b.ends, len(b.frames))
				break
			}
		}
		used = p
	}
}
