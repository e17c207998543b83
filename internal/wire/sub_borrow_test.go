package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// parseAll runs parseMsgs over data fed in pieces of at most chunk bytes,
// the way readBorrowed feeds it, and returns the messages (copied) and
// the error that stopped it, if any.
func parseAll(data []byte, chunk, maxFrame, maxFrames int) ([][][]byte, error) {
	var out [][][]byte
	var b Bundle
	buf := make([]byte, 0, len(data))
	for off := 0; off < len(data); {
		n := min(chunk, len(data)-off)
		buf = append(buf, data[off:off+n]...)
		off += n
		used, need, err := parseMsgs(&b, buf, maxFrame, maxFrames, nil)
		for i := range b.Len() {
			var msg [][]byte
			for _, f := range b.Msg(i) {
				msg = append(msg, slices.Clone(f))
			}
			out = append(out, msg)
		}
		b.frames, b.ends = b.frames[:0], b.ends[:0]
		if err != nil {
			return out, err
		}
		if used < len(buf) && need <= len(buf)-used {
			return out, fmt.Errorf("need %d with %d bytes pending", need, len(buf)-used)
		}
		buf = append(buf[:0], buf[used:]...)
	}
	return out, nil
}

// readAll reads data with the copying frame reader, for comparison.
func readAll(data []byte, maxFrame, maxFrames int) ([][][]byte, error) {
	fr := newFrameReader(bytes.NewReader(data), 16, maxFrame, maxFrames)
	var out [][][]byte
	for {
		frames, info, err := fr.readMsg(nil)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrTooManyFrames) {
				return out, err
			}
			return out, nil // EOF, clean or not: what came before stands
		}
		if info.cmd {
			continue
		}
		out = append(out, frames)
	}
}

func TestParseMsgsSplitAnywhere(t *testing.T) {
	var stream []byte
	msgs := [][][]byte{
		{[]byte("topic"), []byte("payload")},
		{{}, bytes.Repeat([]byte("x"), 300)},
		{[]byte("a"), []byte("b"), []byte("c"), []byte("d")},
	}
	for i, m := range msgs {
		stream = appendMsg(stream, m)
		if i == 0 {
			stream = append(stream, flagCommand, 5, 4, 'P', 'I', 'N', 'G') // a command between messages
		}
	}
	for chunk := 1; chunk <= len(stream); chunk++ {
		got, err := parseAll(stream, chunk, 1<<20, 16)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if len(got) != len(msgs) {
			t.Fatalf("chunk %d: %d messages, want %d", chunk, len(got), len(msgs))
		}
		for i := range msgs {
			if !slices.EqualFunc(got[i], msgs[i], bytes.Equal) {
				t.Fatalf("chunk %d: message %d = %q, want %q", chunk, i, got[i], msgs[i])
			}
		}
	}
}

func TestParseMsgsLimits(t *testing.T) {
	big := appendMsg(nil, [][]byte{bytes.Repeat([]byte("x"), 100)})
	if _, err := parseAll(big[:10], 10, 99, 16); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("a frame header over the limit: %v, want ErrFrameTooLarge before its body", err)
	}
	many := appendMsg(nil, [][]byte{{1}, {2}, {3}})
	if _, err := parseAll(many, len(many), 10, 2); !errors.Is(err, ErrTooManyFrames) {
		t.Errorf("three frames with a limit of two: %v, want ErrTooManyFrames", err)
	}
}

// FuzzParseMsgs: the borrowed parser must return what the copying frame
// reader returns, however the bytes are split into reads, and never ask
// for less room than the pending message needs.
func FuzzParseMsgs(f *testing.F) {
	f.Add(appendMsg(appendMsg(nil, [][]byte{[]byte("topic"), []byte("payload")}), [][]byte{{}, bytes.Repeat([]byte("x"), 300)}), 3)
	f.Add(append([]byte{flagCommand, 10, 9}, "SUBSCRIBEt"...), 1)
	f.Add([]byte{flagLong, 0, 0, 0, 0, 0, 0, 1, 0}, 4)
	f.Add([]byte{flagLong | flagMore, 0xff, 0, 0, 0, 0, 0, 0, 0}, 9)
	f.Add([]byte{flagMore, 1, 'a', flagMore, 1, 'b', flagMore, 0, 0, 0}, 2)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		const maxFrame, maxFrames = 64, 3
		chunk = 1 + int(uint(chunk)%uint(len(data)+1))
		want, werr := readAll(data, maxFrame, maxFrames)
		got, gerr := parseAll(data, chunk, maxFrame, maxFrames)
		if gerr != nil && !errors.Is(gerr, ErrFrameTooLarge) && !errors.Is(gerr, ErrTooManyFrames) {
			t.Fatal(gerr)
		}
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("frame reader: %v, parser: %v", werr, gerr)
		}
		if len(got) != len(want) {
			t.Fatalf("%d messages, frame reader %d", len(got), len(want))
		}
		for i := range want {
			if !slices.EqualFunc(got[i], want[i], bytes.Equal) {
				t.Fatalf("message %d = %q, frame reader %q", i, got[i], want[i])
			}
		}
	})
}

// recvBorrowed collects messages from a borrowing Sub until n arrived,
// checking each with check, releasing each delivery after.
func recvBorrowed(t *testing.T, ctx context.Context, sub *Sub, n int, check func(i int, frames [][]byte)) (deliveries int) {
	t.Helper()
	got := 0
	for got < n {
		d, err := sub.Recv(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		if d.Kind != Messages {
			continue
		}
		deliveries++
		for i := range d.Msgs.Len() {
			check(got, d.Msgs.Msg(i))
			got++
		}
		d.Release()
	}
	return deliveries
}

func TestSubBorrowDeliversInOrder(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	pub, sub := borrowPair(t, ctx)
	// Sizes around the buffer: many small ones, some that straddle
	// buffers, and some larger than a buffer.
	sizes := []int{0, 1, 100, 4 << 10, subReadBufferSize - 20, subReadBufferSize, 3 * subReadBufferSize, 7}
	const n = 200
	payload := func(i int) []byte {
		p := make([]byte, sizes[i%len(sizes)])
		for j := range p {
			p[j] = byte(i + j)
		}
		return p
	}
	go func() {
		for i := range n {
			if err := pub.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), []byte(fmt.Sprint(i)), payload(i)}}); err != nil {
				return
			}
		}
	}()
	deliveries := recvBorrowed(t, ctx, sub, n, func(i int, frames [][]byte) {
		if len(frames) != 3 || string(frames[1]) != fmt.Sprint(i) || !bytes.Equal(frames[2], payload(i)) {
			t.Fatalf("message %d: %d frames, seq %q, %d payload bytes", i, len(frames), frames[1], len(frames[2]))
		}
	})
	t.Logf("%d messages in %d deliveries", n, deliveries)
}

// TestSubBorrowStallsWhileLent: a consumer that keeps every buffer stops
// the reader (TCP pushes back), and releasing them lets it go on.
func TestSubBorrowStallsWhileLent(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	pub, sub := borrowPair(t, ctx)
	const n = 64
	frame := bytes.Repeat([]byte("z"), subReadBufferSize/2)
	go func() {
		for i := range n {
			if err := pub.Send(ctx, &Msg{Frames: [][]byte{[]byte("t"), []byte(fmt.Sprint(i)), frame}}); err != nil {
				return
			}
		}
	}()
	var held []Delivery
	got := 0
	for len(held) < subReadBuffers {
		d, err := sub.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind == Messages {
			held = append(held, d)
			got += d.Msgs.Len()
		}
	}
	// Every buffer is lent: nothing more can arrive.
	select {
	case d := <-sub.Deliveries():
		t.Fatalf("a %v delivery while every buffer was lent", d.Kind)
	case <-time.After(100 * time.Millisecond):
	}
	// The held messages are intact while lent.
	for _, d := range held {
		for i := range d.Msgs.Len() {
			if m := d.Msgs.Msg(i); !bytes.Equal(m[2], frame) {
				t.Fatal("a lent message changed")
			}
		}
		d.Release()
	}
	recvBorrowed(t, ctx, sub, n-got, func(int, [][]byte) {})
}

// borrowPair returns a Pub and a borrowing Sub subscribed to "t" whose
// subscription the Pub has seen.
func borrowPair(t *testing.T, ctx context.Context) (*Pub, *Sub) {
	t.Helper()
	subscribed := make(chan struct{}, 1)
	pub, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: func(ev PeerEvent) {
		if ev.Type == PeerSubscribed {
			subscribed <- struct{}{}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	sub := NewSub(SubConfig{Borrow: true}, "t")
	t.Cleanup(func() { sub.Close() })
	if err := sub.Connect(pub.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Recv(ctx); err != nil || d.Kind != Connected {
		t.Fatalf("%v %v", d.Kind, err)
	}
	select {
	case <-subscribed:
	case <-ctx.Done():
		t.Fatal("the subscription never reached the Pub")
	}
	return pub, sub
}

// TestSendByClass: a message with To reaches only connections of its
// classes, so a publisher can send two forms of its data side by side.
func TestSendByClass(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	var conns []ConnID
	subscribed := make(chan ConnID, 4)
	pub, err := Listen("tcp://127.0.0.1:0", PubConfig{OnEvent: func(ev PeerEvent) {
		if ev.Type == PeerSubscribed {
			subscribed <- ev.Conn
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	subs := []*Sub{NewSub(SubConfig{}, "t"), NewSub(SubConfig{}, "t")}
	for _, s := range subs {
		defer s.Close()
		if err := s.Connect(pub.Endpoint()); err != nil {
			t.Fatal(err)
		}
		if d, err := s.Recv(ctx); err != nil || d.Kind != Connected {
			t.Fatalf("%v %v", d.Kind, err)
		}
		select {
		case id := <-subscribed:
			conns = append(conns, id)
		case <-ctx.Done():
			t.Fatal("no subscription")
		}
	}
	// conns[1] is the second Sub's: it subscribed after the first connected.
	if !pub.SetClass(conns[1], 1) {
		t.Fatal("SetClass of a live connection failed")
	}
	if pub.SetClass(ConnID(1<<40), 1) {
		t.Fatal("SetClass of no connection succeeded")
	}
	for _, m := range []*Msg{
		{Frames: [][]byte{[]byte("t"), []byte("class 0")}, To: Classes(0)},
		{Frames: [][]byte{[]byte("t"), []byte("class 1")}, To: Classes(1)},
		{Frames: [][]byte{[]byte("t"), []byte("all")}},
	} {
		if err := pub.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range [][]string{{"class 0", "all"}, {"class 1", "all"}} {
		for _, w := range want {
			d, err := subs[i].Recv(ctx)
			if err != nil || d.Kind != Message || string(d.Frames[1]) != w {
				t.Fatalf("sub %d: %v %q %v, want %q", i, d.Kind, d.Frames, err, w)
			}
		}
	}
}
