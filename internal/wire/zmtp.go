package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
)

// ZMTP 3.0 frame flags (RFC 23).
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

// Defaults shared by every socket type.
const (
	DefaultHandshakeTimeout = 2 * time.Second
	DefaultMaxFrame         = 64 << 20
	DefaultMaxFrames        = 16
	ioBufferSize            = 64 << 10
	slabSize                = 64 << 10
)

// maxHandshakeFrame bounds one frame of the security handshake (READY and
// its metadata, PLAIN's HELLO); real peers send a few hundred bytes.
const maxHandshakeFrame = 64 << 10

// errBadHandshake wraps what a peer did wrong during the handshake.
var errBadHandshake = errors.New("wire: bad handshake")

// handshake runs the ZMTP greeting and security handshake on nc within
// timeout, and returns the peer's socket type. zmq4 reads exactly what the
// handshake needs, so nc carries nothing buffered afterwards.
//
// zmq4 trusts the bytes it parses: it allocates whatever size a frame
// header announces (2^45 bytes is a fatal out-of-memory, not a panic) and
// slices READY metadata without bounds checks. So the bytes pass through a
// handshakeConn that refuses oversized or non-command frames before zmq4
// sees them, and a panic in zmq4's parser becomes an error for this one
// connection instead of a crash of the process.
func handshake(nc net.Conn, self zmq4.SocketType, sec zmq4.Security, server bool, timeout time.Duration) (_ zmq4.SocketType, err error) {
	if sec == nil {
		sec = null.Security()
	}
	if err := nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: zmq4 failed on the peer's data: %v", errBadHandshake, r)
		}
	}()
	zc, err := zmq4.Open(&handshakeConn{Conn: nc, greeting: greetingSize}, sec, self, zmq4.SocketIdentity(""), server, nil)
	if err != nil {
		return "", err
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return "", err
	}
	return zmq4.SocketType(zc.Peer.Meta["Socket-Type"]), nil
}

// greetingSize is the length of the ZMTP 3.x greeting.
const greetingSize = 64

// handshakeConn follows the byte stream zmq4 reads during the handshake:
// the greeting, then command frames. A frame that is not a single command
// or that announces more than maxHandshakeFrame bytes fails the Read that
// would hand its header to zmq4, so zmq4 never allocates for it.
type handshakeConn struct {
	net.Conn
	greeting int    // greeting bytes still to pass
	hdr      int    // header bytes seen of the current frame; 0: expecting flags
	flags    byte   // flags of the current frame
	size     uint64 // size field being assembled
	body     uint64 // body bytes of the current frame still to pass
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if cerr := c.check(p[:n]); cerr != nil {
		return 0, cerr
	}
	return n, err
}

func (c *handshakeConn) check(b []byte) error {
	for len(b) > 0 {
		switch {
		case c.greeting > 0:
			k := min(c.greeting, len(b))
			c.greeting -= k
			b = b[k:]
		case c.body > 0:
			k := min(c.body, uint64(len(b)))
			c.body -= k
			b = b[k:]
		case c.hdr == 0:
			c.flags, c.size, c.hdr = b[0], 0, 1
			b = b[1:]
			if c.flags&^flagLong != flagCommand {
				return fmt.Errorf("%w: frame flags %#02x, want a command", errBadHandshake, c.flags)
			}
		default:
			c.size = c.size<<8 | uint64(b[0])
			c.hdr++
			b = b[1:]
			need := 2 // flags and a 1-byte size
			if c.flags&flagLong != 0 {
				need = 9 // flags and an 8-byte size
			}
			if c.hdr == need {
				if c.size > maxHandshakeFrame {
					return fmt.Errorf("%w: %d byte command, limit %d", errBadHandshake, c.size, maxHandshakeFrame)
				}
				c.body, c.hdr = c.size, 0
			}
		}
	}
	return nil
}

// TooLargeHead is how many bytes of an oversized frame a Server keeps
// and hands to its Handler (Request.TooLarge): enough for a request
// header with an id, so the application can answer with its own error.
const TooLargeHead = 256

// frameReader reads ZMTP messages from a buffered connection. Frame bodies
// are carved out of slabs that are never reused, so a frame stays valid for
// as long as anyone holds it, at the cost of one allocation per slab.
type frameReader struct {
	br        *bufio.Reader
	maxFrame  int
	maxFrames int
	// slabSize is the size of the slabs frames are carved from; 0 gives
	// each frame its own allocation (for readers that see few messages
	// and should cost nothing while idle).
	slabSize int
	slab     []byte
	// reuse makes a message's frames valid only until the next readMsg:
	// they are carved from one buffer, kept and reused from message to
	// message, so a busy reader allocates nothing. Slabs are not used.
	reuse bool
	buf   []byte
	used  int
	// hardCap, if positive, makes the reader lenient: a message with a
	// frame above maxFrame or more than maxFrames frames is read anyway
	// as long as its frames total at most hardCap bytes (headers
	// included); what exceeds the limits is discarded and the message is
	// reported tooLarge. Beyond hardCap the connection must close.
	hardCap int64
}

// msgInfo describes a message readMsg returned.
type msgInfo struct {
	// cmd: the message is a command; frames holds its single body (name
	// length, name, data).
	cmd bool
	// tooLarge (lenient readers only): the message exceeded maxFrame or
	// maxFrames. An oversized frame is cut to its first TooLargeHead
	// bytes, and frames beyond maxFrames are dropped.
	tooLarge bool
	// size is the sum of the frame sizes the peer announced.
	size int64
}

func newFrameReader(r io.Reader, bufSize, maxFrame, maxFrames int) *frameReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	if maxFrames <= 0 {
		maxFrames = DefaultMaxFrames
	}
	return &frameReader{br: bufio.NewReaderSize(r, bufSize), maxFrame: maxFrame, maxFrames: maxFrames, slabSize: slabSize}
}

func (r *frameReader) alloc(n int) []byte {
	if r.reuse {
		if r.used+n > len(r.buf) {
			// The frames already returned keep the old buffer alive.
			r.buf = make([]byte, max(2*len(r.buf), n, 4<<10))
			r.used = 0
		}
		b := r.buf[r.used : r.used+n : r.used+n]
		r.used += n
		return b
	}
	if n > len(r.slab) {
		if r.slabSize == 0 || n > r.slabSize/4 {
			return make([]byte, n)
		}
		r.slab = make([]byte, r.slabSize)
	}
	b := r.slab[:n:n]
	r.slab = r.slab[n:]
	return b
}

// readMsg reads one message or command.
func (r *frameReader) readMsg(frames [][]byte) (_ [][]byte, info msgInfo, err error) {
	frames = frames[:0]
	r.used = 0
	var total int64 // header and body bytes of the message so far
	for {
		flags, err := r.br.ReadByte()
		if err != nil {
			if len(frames) > 0 || total > 0 {
				err = noEOF(err) // inside a multipart message
			}
			return frames, info, err
		}
		var size uint64
		hdr := int64(2)
		if flags&flagLong != 0 {
			// Peek, not ReadFull into an array: the array would escape.
			b, err := r.br.Peek(8)
			if err != nil {
				return frames, info, noEOF(err)
			}
			size = binary.BigEndian.Uint64(b)
			_, _ = r.br.Discard(8)
			hdr = 9
		} else {
			b, err := r.br.ReadByte()
			if err != nil {
				return frames, info, noEOF(err)
			}
			size = uint64(b)
		}
		over := size > uint64(r.maxFrame) || len(frames) == r.maxFrames
		if over && r.hardCap <= 0 {
			if size > uint64(r.maxFrame) {
				return frames, info, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, r.maxFrame)
			}
			return frames, info, fmt.Errorf("%w: limit %d", ErrTooManyFrames, r.maxFrames)
		}
		if r.hardCap > 0 {
			if size > uint64(r.hardCap) || total+hdr+int64(size) > r.hardCap {
				return frames, info, fmt.Errorf("%w: message of more than %d bytes", ErrFrameTooLarge, r.hardCap)
			}
			total += hdr + int64(size)
		}
		info.size += int64(size)
		switch {
		case !over:
			body := r.alloc(int(size))
			if _, err := io.ReadFull(r.br, body); err != nil {
				return frames, info, noEOF(err)
			}
			frames = append(frames, body)
		case len(frames) < r.maxFrames:
			// Keep the head of an oversized frame, discard the rest.
			info.tooLarge = true
			body := r.alloc(min(int(size), TooLargeHead))
			if _, err := io.ReadFull(r.br, body); err != nil {
				return frames, info, noEOF(err)
			}
			frames = append(frames, body)
			if _, err := r.br.Discard(int(size) - len(body)); err != nil {
				return frames, info, noEOF(err)
			}
		default:
			info.tooLarge = true // a frame beyond maxFrames
			if _, err := r.br.Discard(int(size)); err != nil {
				return frames, info, noEOF(err)
			}
		}
		if flags&flagCommand != 0 {
			info.cmd = true
			return frames, info, nil
		}
		if flags&flagMore == 0 {
			return frames, info, nil
		}
	}
}

// noEOF turns io.EOF inside a frame into io.ErrUnexpectedEOF: only EOF at
// a message boundary is an orderly hang-up.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeMsg writes frames as one ZMTP message into w and returns the bytes
// written. Headers go in byte by byte: a header array passed to Write
// would escape and cost an allocation per frame.
func writeMsg(w *bufio.Writer, frames [][]byte) (int, error) {
	total := 0
	for i, f := range frames {
		var flags byte
		if i < len(frames)-1 {
			flags = flagMore
		}
		long := len(f) > 255
		if long {
			flags |= flagLong
		}
		if err := w.WriteByte(flags); err != nil {
			return total, err
		}
		total++
		if long {
			for shift := 56; shift >= 0; shift -= 8 {
				if err := w.WriteByte(byte(uint64(len(f)) >> shift)); err != nil {
					return total, err
				}
				total++
			}
		} else {
			if err := w.WriteByte(byte(len(f))); err != nil {
				return total, err
			}
			total++
		}
		k, err := w.Write(f)
		total += k
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// commandName returns the name of a ZMTP command body.
func commandName(body []byte) (name string, data []byte) {
	if len(body) == 0 || int(body[0]) > len(body)-1 {
		return "", nil
	}
	return string(body[1 : 1+body[0]]), body[1+body[0]:]
}

// appendMsg appends frames as one ZMTP message to dst.
func appendMsg(dst []byte, frames [][]byte) []byte {
	for i, f := range frames {
		var flags byte
		if i < len(frames)-1 {
			flags = flagMore
		}
		if len(f) > 255 {
			dst = append(dst, flags|flagLong)
			dst = binary.BigEndian.AppendUint64(dst, uint64(len(f)))
		} else {
			dst = append(dst, flags, byte(len(f)))
		}
		dst = append(dst, f...)
	}
	return dst
}
