package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/syncmq/syncmq/coord"
)

// publish runs the publishing loop the options describe and returns how
// many messages were published. It stops with ctx.Err() when ctx ends.
func publish(ctx context.Context, pub *coord.Publisher, o options) (int, error) {
	if o.stdin {
		return publishLines(ctx, pub, os.Stdin, o.topics[0])
	}
	return eachPayload(ctx, o, func(i int, payload []byte) error {
		_, err := pub.Publish(ctx, o.topics[i%len(o.topics)], payload)
		return err
	})
}

// eachPayload calls send with the i-th of --count payloads (--payload, or
// random payloads of --size bytes) at --rate, and returns how many were
// sent. It stops with ctx.Err() when ctx ends, or with send's error.
func eachPayload(ctx context.Context, o options, send func(i int, payload []byte) error) (int, error) {
	payload := o.payload
	var random []byte
	if o.size > 0 {
		random = randomPool(o.size)
	}
	pace := newPacer(o.rate)
	for i := 0; i < o.count; i++ {
		if random != nil {
			off := (i * 7919) % (len(random) - o.size)
			payload = random[off : off+o.size]
		}
		if err := pace.wait(ctx, i); err != nil {
			return i, err
		}
		if i%256 == 0 && ctx.Err() != nil {
			return i, ctx.Err() // send looks at ctx only when it blocks
		}
		if err := send(i, payload); err != nil {
			return i, err
		}
	}
	return o.count, nil
}

// randomPool returns random bytes for payloads of size bytes: a pool
// twice the size gives each message a different window without
// generating randomness per message.
func randomPool(size int) []byte {
	random := make([]byte, 2*size+4096)
	_, _ = rand.Read(random)
	return random
}

// publishLines publishes each line of r. The reader runs on its own
// goroutine so that a signal stops publishing even while the input is
// silent; that goroutine ends with the input (or the process).
func publishLines(ctx context.Context, pub *coord.Publisher, r io.Reader, defaultTopic string) (int, error) {
	lines := make(chan string, 256)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				readErr <- nil
				return
			}
		}
		readErr <- sc.Err()
	}()
	n := 0
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
			return n, ctx.Err()
		}
		if !ok {
			break
		}
		topic, payload := defaultTopic, line
		if t, p, cut := strings.Cut(line, "\t"); cut {
			topic, payload = t, p
		}
		if _, err := pub.Publish(ctx, topic, []byte(payload)); err != nil {
			return n, fmt.Errorf("line %d: %w", n+1, err)
		}
		n++
	}
	if err := <-readErr; err != nil {
		return n, fmt.Errorf("stdin: %w", err)
	}
	return n, nil
}

// pacer spaces messages to a target rate by scheduling message i at
// start + i/rate, so short stalls are caught up rather than accumulated.
type pacer struct {
	rate  float64
	start time.Time
}

func newPacer(rate float64) *pacer { return &pacer{rate: rate} }

func (p *pacer) wait(ctx context.Context, i int) error {
	if p.rate <= 0 {
		return nil
	}
	if i == 0 {
		p.start = time.Now()
		return nil
	}
	due := p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
