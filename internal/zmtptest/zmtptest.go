// Package zmtptest speaks just enough ZMTP 3.0 (NULL mechanism) over a
// plain TCP connection to play a minimal or hostile peer in tests: a SUB
// that subscribes and never reads, a DEALER that pipelines requests, a
// client that completes the handshake and then idles. It shares no code
// with internal/wire on purpose: a test of wire's defences should not
// borrow wire's own code for the attack.
package zmtptest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// Frame flags (ZMTP 3.0, RFC 23).
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

// maxFrame bounds a frame Recv accepts: a test peer must not be made to
// allocate what a broken server announces.
const maxFrame = 64 << 20

// Conn is one ZMTP connection after the handshake. Not safe for
// concurrent use, except that Send and Recv may run on two goroutines.
type Conn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer

	reuse  []byte   // RecvReuse's buffer
	frames [][]byte // RecvReuse's frames
}

// Dial connects to endpoint ("tcp://host:port" or "host:port") from
// source address src ("127.0.0.2"; "" lets the OS choose) and completes
// the ZMTP handshake announcing socketType ("SUB", "DEALER", "REQ"). The
// handshake is bounded by ctx and 10 s.
func Dial(ctx context.Context, endpoint, socketType, src string) (*Conn, error) {
	addr := strings.TrimPrefix(endpoint, "tcp://")
	d := net.Dialer{Timeout: 10 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Small buffers: tests hold thousands of these and measure the heap.
	c := &Conn{Conn: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = nc.SetDeadline(deadline)
	if err := c.handshake(socketType); err != nil {
		nc.Close()
		return nil, fmt.Errorf("zmtptest: handshake with %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// MustDial is Dial that fails t on error and closes the connection when
// the test ends.
func MustDial(t testing.TB, endpoint, socketType, src string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, endpoint, socketType, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (c *Conn) handshake(socketType string) error {
	var g [64]byte
	g[0], g[9], g[10], g[11] = 0xff, 0x7f, 3, 0
	copy(g[12:], "NULL")
	if _, err := c.Conn.Write(g[:]); err != nil {
		return err
	}
	var peer [64]byte
	if _, err := io.ReadFull(c.br, peer[:]); err != nil {
		return err
	}
	if peer[0] != 0xff || peer[9] != 0x7f || peer[10] < 3 {
		return errors.New("not a ZMTP 3 greeting")
	}
	body := append([]byte{5}, "READY"...)
	body = append(body, byte(len("Socket-Type")))
	body = append(body, "Socket-Type"...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(socketType)))
	body = append(body, socketType...)
	c.writeFrame(flagCommand, body)
	if err := c.bw.Flush(); err != nil {
		return err
	}
	flags, cmd, err := c.readFrame()
	if err != nil {
		return err
	}
	if flags&flagCommand == 0 || len(cmd) < 6 || string(cmd[1:6]) != "READY" {
		return fmt.Errorf("expected READY, got flags %#x %q", flags, cmd)
	}
	return nil
}

func (c *Conn) writeFrame(flags byte, body []byte) {
	if len(body) > 255 {
		c.bw.WriteByte(flags | flagLong)
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(body)))
		c.bw.Write(n[:])
	} else {
		c.bw.WriteByte(flags)
		c.bw.WriteByte(byte(len(body)))
	}
	c.bw.Write(body)
}

// Queue buffers one message of frames without sending it; Flush sends
// what was queued. A pipelining client queues many requests, then flushes.
func (c *Conn) Queue(frames ...[]byte) {
	for i, f := range frames {
		var flags byte
		if i < len(frames)-1 {
			flags = flagMore
		}
		c.writeFrame(flags, f)
	}
}

// Flush sends every queued message.
func (c *Conn) Flush() error { return c.bw.Flush() }

// Send sends one message of frames.
func (c *Conn) Send(frames ...[]byte) error {
	c.Queue(frames...)
	return c.Flush()
}

// Subscribe sends a ZMTP 3.0 subscription message (0x01 and the prefix).
func (c *Conn) Subscribe(prefix string) error {
	return c.Send(append([]byte{1}, prefix...))
}

// QueueSubscribe queues a subscription message without flushing.
func (c *Conn) QueueSubscribe(prefix string) {
	c.Queue(append([]byte{1}, prefix...))
}

func (c *Conn) readFrame() (flags byte, body []byte, err error) {
	flags, _, body, err = c.readFrameInto(nil)
	return flags, body, err
}

// readFrameInto reads one frame into buf's spare capacity (growing it as
// needed; nil: a fresh allocation) and returns buf with the body
// appended, and the body.
func (c *Conn) readFrameInto(buf []byte) (flags byte, grown, body []byte, err error) {
	flags, err = c.br.ReadByte()
	if err != nil {
		return 0, buf, nil, err
	}
	var size uint64
	if flags&flagLong != 0 {
		var n [8]byte
		if _, err := io.ReadFull(c.br, n[:]); err != nil {
			return 0, buf, nil, err
		}
		size = binary.BigEndian.Uint64(n[:])
	} else {
		b, err := c.br.ReadByte()
		if err != nil {
			return 0, buf, nil, err
		}
		size = uint64(b)
	}
	if size > maxFrame {
		return 0, buf, nil, fmt.Errorf("zmtptest: frame of %d bytes", size)
	}
	grown = slices.Grow(buf, int(size))[:len(buf)+int(size)]
	body = grown[len(buf):]
	_, err = io.ReadFull(c.br, body)
	return flags, grown, body, err
}

// RecvReuse is Recv into a buffer reused by the next call: the frames are
// valid until then. A client that reads a lot without keeping it (a
// flood of replays) then costs the process no garbage.
func (c *Conn) RecvReuse() ([][]byte, error) {
	c.reuse, c.frames = c.reuse[:0], c.frames[:0]
	for {
		var flags byte
		var body []byte
		var err error
		flags, c.reuse, body, err = c.readFrameInto(c.reuse)
		if err != nil {
			return nil, err
		}
		if flags&flagCommand != 0 {
			continue
		}
		c.frames = append(c.frames, body)
		if flags&flagMore == 0 {
			return c.frames, nil
		}
	}
}

// Recv returns the next message's frames, skipping commands. A deadline
// set on the connection bounds it.
func (c *Conn) Recv() ([][]byte, error) {
	var frames [][]byte
	for {
		flags, body, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		if flags&flagCommand != 0 {
			continue
		}
		frames = append(frames, body)
		if flags&flagMore == 0 {
			return frames, nil
		}
	}
}

// Closed waits up to d for the other side to close the connection,
// discarding whatever arrives meanwhile, and reports whether it did.
func (c *Conn) Closed(d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 4096)
	for {
		if _, err := c.br.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}
