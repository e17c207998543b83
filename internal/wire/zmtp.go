package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
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

// SplitEndpoint turns "tcp://host:port" into "host:port"; "*" as host means
// every interface.
func SplitEndpoint(ep string) (string, error) {
	rest, ok := strings.CutPrefix(ep, "tcp://")
	if !ok {
		return "", fmt.Errorf("%w: %q: only tcp:// is supported", ErrBadEndpoint, ep)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadEndpoint, ep, err)
	}
	if host == "*" {
		host = ""
	}
	return net.JoinHostPort(host, port), nil
}

// handshake runs the ZMTP greeting and security handshake on nc within
// timeout, and returns the peer's socket type. zmq4 reads exactly what the
// handshake needs, so nc carries nothing buffered afterwards.
func handshake(nc net.Conn, self zmq4.SocketType, sec zmq4.Security, server bool, timeout time.Duration) (zmq4.SocketType, error) {
	if sec == nil {
		sec = null.Security()
	}
	if err := nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	zc, err := zmq4.Open(nc, sec, self, zmq4.SocketIdentity(""), server, nil)
	if err != nil {
		return "", err
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return "", err
	}
	return zmq4.SocketType(zc.Peer.Meta["Socket-Type"]), nil
}

// frameReader reads ZMTP messages from a buffered connection. Frame bodies
// are carved out of slabs that are never reused, so a frame stays valid for
// as long as anyone holds it, at the cost of one allocation per slab.
type frameReader struct {
	br        *bufio.Reader
	maxFrame  int
	maxFrames int
	slab      []byte
}

func newFrameReader(r io.Reader, maxFrame, maxFrames int) *frameReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	if maxFrames <= 0 {
		maxFrames = DefaultMaxFrames
	}
	return &frameReader{br: bufio.NewReaderSize(r, ioBufferSize), maxFrame: maxFrame, maxFrames: maxFrames}
}

func (r *frameReader) alloc(n int) []byte {
	if n > len(r.slab) {
		if n > slabSize/4 {
			return make([]byte, n)
		}
		r.slab = make([]byte, slabSize)
	}
	b := r.slab[:n:n]
	r.slab = r.slab[n:]
	return b
}

// readMsg reads one message or command. For a command, frames holds its
// single body (name length, name, data) and cmd is true.
func (r *frameReader) readMsg(frames [][]byte) (_ [][]byte, cmd bool, err error) {
	frames = frames[:0]
	for {
		flags, err := r.br.ReadByte()
		if err != nil {
			return frames, false, err
		}
		var size uint64
		if flags&flagLong != 0 {
			var b [8]byte
			if _, err := io.ReadFull(r.br, b[:]); err != nil {
				return frames, false, err
			}
			size = binary.BigEndian.Uint64(b[:])
		} else {
			b, err := r.br.ReadByte()
			if err != nil {
				return frames, false, err
			}
			size = uint64(b)
		}
		if size > uint64(r.maxFrame) {
			return frames, false, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, r.maxFrame)
		}
		if len(frames) == r.maxFrames {
			return frames, false, fmt.Errorf("%w: limit %d", ErrTooManyFrames, r.maxFrames)
		}
		body := r.alloc(int(size))
		if _, err := io.ReadFull(r.br, body); err != nil {
			return frames, false, err
		}
		frames = append(frames, body)
		if flags&flagCommand != 0 {
			return frames, true, nil
		}
		if flags&flagMore == 0 {
			return frames, false, nil
		}
	}
}

// writeMsg writes frames as one ZMTP message into w.
func writeMsg(w *bufio.Writer, frames [][]byte) error {
	for i, f := range frames {
		var hdr [9]byte
		if i < len(frames)-1 {
			hdr[0] = flagMore
		}
		n := 2
		if len(f) > 255 {
			hdr[0] |= flagLong
			binary.BigEndian.PutUint64(hdr[1:], uint64(len(f)))
			n = 9
		} else {
			hdr[1] = byte(len(f))
		}
		if _, err := w.Write(hdr[:n]); err != nil {
			return err
		}
		if _, err := w.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// commandName returns the name of a ZMTP command body.
func commandName(body []byte) (name string, data []byte) {
	if len(body) == 0 || int(body[0]) > len(body)-1 {
		return "", nil
	}
	return string(body[1 : 1+body[0]]), body[1+body[0]:]
}
