package clustertest

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a target and can cut the network:
// Cut closes every connection and refuses new ones until Heal. When Drop
// is set, the proxy parses the ZMTP stream from target to client and
// discards whole messages for which Drop returns true, as a lossy network
// would (commands and the handshake always pass).
type Proxy struct {
	ln     net.Listener
	target string
	drop   atomic.Pointer[func(frames [][]byte) bool]

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	Dropped atomic.Int64
}

// NewProxy listens on 127.0.0.1 and forwards to target ("host:port" or
// "tcp://host:port"). It is closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	if len(target) > 6 && target[:6] == "tcp://" {
		target = target[6:]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Endpoint returns "tcp://127.0.0.1:port" of the proxy.
func (p *Proxy) Endpoint() string { return "tcp://" + p.ln.Addr().String() }

// SetDrop installs (or with nil removes) the message filter.
func (p *Proxy) SetDrop(f func(frames [][]byte) bool) {
	if f == nil {
		p.drop.Store(nil)
		return
	}
	p.drop.Store(&f)
}

// Cut closes every forwarded connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Heal accepts connections again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil || !p.track(server) {
			client.Close()
			if server != nil {
				server.Close()
			}
			continue
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(server, client)
			server.Close()
			client.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.forward(client, server)
			server.Close()
			client.Close()
		}()
	}
}

// forward copies the target's ZMTP stream to the client message by
// message, so that Drop can discard whole messages.
func (p *Proxy) forward(dst io.Writer, src io.Reader) {
	br := bufio.NewReader(src)
	bw := bufio.NewWriter(dst)
	// Greeting: 64 bytes, then the security handshake's commands pass as frames.
	var greeting [64]byte
	if _, err := io.ReadFull(br, greeting[:]); err != nil {
		return
	}
	if _, err := bw.Write(greeting[:]); err != nil || bw.Flush() != nil {
		return
	}
	var raw []byte
	var frames [][]byte
	for {
		raw, frames = raw[:0], frames[:0]
		for {
			flags, err := br.ReadByte()
			if err != nil {
				return
			}
			var size uint64
			hdr := []byte{flags}
			if flags&0x02 != 0 {
				var b [8]byte
				if _, err := io.ReadFull(br, b[:]); err != nil {
					return
				}
				size = binary.BigEndian.Uint64(b[:])
				hdr = append(hdr, b[:]...)
			} else {
				b, err := br.ReadByte()
				if err != nil {
					return
				}
				size = uint64(b)
				hdr = append(hdr, b)
			}
			body := make([]byte, size)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			raw = append(append(raw, hdr...), body...)
			if flags&0x04 != 0 { // command: always forwarded
				frames = nil
				break
			}
			frames = append(frames, body)
			if flags&0x01 == 0 {
				break
			}
		}
		if f := p.drop.Load(); f != nil && frames != nil && (*f)(frames) {
			p.Dropped.Add(1)
		} else if _, err := bw.Write(raw); err != nil {
			return
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}
