package wire

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// testPublisher is the PUB side of a scenario: a wire.Pub, or a bare zmq4
// PUB for the SYNCMQ_BARE_ZMQ4 variants.
type testPublisher interface {
	Endpoint() string
	Send(ctx context.Context, frames [][]byte) error
	Close()
}

type wirePub struct{ p *Pub }

func (w wirePub) Endpoint() string { return w.p.Endpoint() }
func (w wirePub) Send(ctx context.Context, frames [][]byte) error {
	return w.p.Send(ctx, &Msg{Frames: frames})
}
func (w wirePub) Close() { w.p.Close() }

type zmqPub struct{ s zmq4.Socket }

func newZmqPub(t *testing.T) zmqPub {
	t.Helper()
	s := zmq4.NewPub(context.Background(), zmq4.WithLogger(log.New(io.Discard, "", 0)))
	if err := s.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return zmqPub{s}
}

func (z zmqPub) Endpoint() string { return "tcp://" + z.s.Addr().String() }
func (z zmqPub) Send(_ context.Context, frames [][]byte) error {
	return z.s.Send(zmq4.NewMsgFrom(frames...))
}
func (z zmqPub) Close() { z.s.Close() }

// warmupSeq marks the probes sent until every subscriber is known to be
// subscribed; the measured flow starts at seq 0 after them.
const warmupSeq = 1<<64 - 1

func seqOf(b []byte) uint64 {
	if len(b) < 8 {
		return warmupSeq - 1 // never a valid seq in these tests
	}
	return binary.BigEndian.Uint64(b)
}

// slowScenario is defect 1: three subscribers, 200,000 messages of 1 KiB
// at 20,000/s, and one subscriber that stops reading for 5 s.
type slowScenario struct {
	n        int           // messages in the flow
	rate     int           // messages per second
	size     int           // payload bytes
	stallAt  uint64        // the stalled subscriber stops after this seq
	stallFor time.Duration // and resumes this much later
}

// healthyRecv is what one healthy subscriber saw.
type healthyRecv struct {
	warm     int
	received int
	maxGap   time.Duration
	gapAt    uint64 // seq that arrived after the longest gap
	errs     []string
}

// stalledRecv is what the stalled subscriber saw.
type stalledRecv struct {
	warm         int
	oldReceived  int    // messages of the first connection (seq 0..oldReceived-1)
	disconnected bool   // a Disconnected delivery ended the first connection
	connects     int    // Connected deliveries, the first included
	newFirst     uint64 // first seq after reconnecting
	newReceived  int
	stoppedAt    time.Time
	errs         []string
}

func (sc slowScenario) run(t *testing.T, pub testPublisher) ([2]healthyRecv, stalledRecv) {
	ctx := testCtx(t, 90*time.Second)
	subs := make([]*Sub, 3)
	for i := range subs {
		subs[i] = NewSub(SubConfig{}, "t")
		defer subs[i].Close()
		if err := subs[i].Connect(pub.Endpoint()); err != nil {
			t.Fatal(err)
		}
	}
	var warm sync.WaitGroup
	warm.Add(3)
	var wg sync.WaitGroup
	var healthy [2]healthyRecv
	last := uint64(sc.n - 1)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &healthy[i]
			var warmOnce sync.Once
			var next uint64
			var prev time.Time
			for next <= last {
				d, err := subs[i].Recv(ctx)
				if err != nil {
					h.errs = append(h.errs, fmt.Sprintf("recv after seq %d: %v", next, err))
					return
				}
				if d.Kind != Message {
					if d.Kind == Disconnected {
						h.errs = append(h.errs, fmt.Sprintf("disconnected at seq %d: %v", next, d.Err))
					}
					continue
				}
				seq := seqOf(d.Frames[1])
				if seq == warmupSeq {
					h.warm++
					warmOnce.Do(warm.Done)
					continue
				}
				now := time.Now()
				if seq != next && len(h.errs) < 5 {
					h.errs = append(h.errs, fmt.Sprintf("got seq %d, want %d", seq, next))
				}
				if !prev.IsZero() && now.Sub(prev) > h.maxGap {
					h.maxGap, h.gapAt = now.Sub(prev), seq
				}
				prev, next = now, seq+1
				h.received++
			}
		}()
	}
	var stalled stalledRecv
	stopped, resume := make(chan struct{}), make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			select {
			case <-stopped:
			default:
				close(stopped)
			}
		}()
		s := &stalled
		var warmOnce sync.Once
		var next uint64
		session := 1
		for {
			d, err := subs[2].Recv(ctx)
			if err != nil {
				s.errs = append(s.errs, fmt.Sprintf("recv in connection %d after seq %d: %v", session, next, err))
				return
			}
			switch d.Kind {
			case Connected:
				s.connects++
				continue
			case Disconnected:
				if session == 1 {
					s.disconnected = true
				}
				session++
				continue
			}
			seq := seqOf(d.Frames[1])
			if seq == warmupSeq {
				s.warm++
				warmOnce.Do(warm.Done)
				continue
			}
			switch {
			case session == 1 && seq != next:
				s.errs = append(s.errs, fmt.Sprintf("first connection: got seq %d, want %d", seq, next))
			case session == 2 && s.newReceived == 0:
				s.newFirst = seq
			case session == 2 && seq != next:
				s.errs = append(s.errs, fmt.Sprintf("second connection: got seq %d, want %d", seq, next))
			case session > 2:
				s.errs = append(s.errs, fmt.Sprintf("connection %d: unexpected", session))
			}
			if session == 1 {
				s.oldReceived++
			} else {
				s.newReceived++
			}
			next = seq + 1
			if seq == sc.stallAt && session == 1 {
				s.stoppedAt = time.Now()
				close(stopped)
				select { // the outage of this subscriber: it reads nothing meanwhile
				case <-resume:
				case <-ctx.Done():
					return
				}
			}
			if seq == last {
				return
			}
		}
	}()
	go func() {
		<-stopped
		outage := time.NewTimer(sc.stallFor)
		defer outage.Stop()
		select {
		case <-outage.C:
		case <-ctx.Done():
		}
		close(resume)
	}()

	// Probe until all three subscriptions are in place.
	warmed := make(chan struct{})
	go func() { warm.Wait(); close(warmed) }()
	probe := time.NewTicker(5 * time.Millisecond)
	defer probe.Stop()
	for ready := false; !ready; {
		if err := pub.Send(ctx, [][]byte{[]byte("t"), seqPayload(nil, warmupSeq, 8)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-warmed:
			ready = true
		case <-probe.C:
		case <-ctx.Done():
			t.Fatal("subscribers never subscribed")
		}
	}

	// The flow: sc.rate messages per second, paced by a 1 ms ticker.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < sc.n; {
		due := min(sc.n, int(time.Since(start).Seconds()*float64(sc.rate))+1)
		for ; i < due; i++ {
			frames := [][]byte{[]byte("t"), seqPayload(nil, uint64(i), sc.size)}
			if err := pub.Send(ctx, frames); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("flow stuck at %d", i)
		}
	}
	t.Logf("flow of %d messages took %v", sc.n, time.Since(start).Round(time.Millisecond))
	wg.Wait()
	return healthy, stalled
}

var defect1 = slowScenario{n: 200_000, rate: 20_000, size: 1024, stallAt: 20_000, stallFor: 5 * time.Second}

// TestSlowSubscriberDoesNotStallOthers is defect 1: zmq4's PUB writes each
// message to every subscriber in turn with blocking writes, so one
// subscriber that stops reading stops everyone. With wire.Pub the two
// healthy subscribers receive all 200,000 messages and never wait longer
// than SlowTimeout; the stalled one is disconnected, counted, and
// reconnects by itself; and every message addressed to it is either
// received or counted as dropped.
func TestSlowSubscriberDoesNotStallOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s of traffic")
	}
	const slowTimeout = 200 * time.Millisecond
	var events eventLog
	p, err := Listen("tcp://127.0.0.1:0", PubConfig{SlowTimeout: slowTimeout, QueueBytes: 1 << 20, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	healthy, stalled := defect1.run(t, wirePub{p})

	for i, h := range healthy {
		t.Logf("healthy subscriber %d: %d messages, longest gap %v (before seq %d)", i, h.received, h.maxGap.Round(time.Millisecond), h.gapAt)
		if h.received != defect1.n || len(h.errs) > 0 {
			t.Errorf("healthy subscriber %d: received %d of %d; %v", i, h.received, defect1.n, h.errs)
		}
		// The bound is SlowTimeout; the margin absorbs scheduling and GC
		// under -race on a small machine.
		if limit := slowTimeout + 150*time.Millisecond; h.maxGap > limit {
			t.Errorf("healthy subscriber %d stalled for %v, limit %v", i, h.maxGap, limit)
		}
	}
	slow := events.of(PeerSlow)
	st := p.Stats()
	t.Logf("stalled subscriber: %d messages, stopped, then %d after reconnecting from seq %d; pub stats %+v", stalled.oldReceived, stalled.newReceived, stalled.newFirst, st)
	t.Logf("stalled subscriber cut off %v after it stopped reading, %d messages dropped", events.firstAt(PeerSlow).Sub(stalled.stoppedAt).Round(time.Millisecond), st.Dropped)
	if len(slow) != 1 || st.SlowConsumers != 1 {
		t.Fatalf("slow consumer events %v, stats %+v; want exactly one", slow, st)
	}
	if len(stalled.errs) > 0 || !stalled.disconnected || stalled.connects != 2 || stalled.newReceived == 0 {
		t.Errorf("stalled subscriber: disconnected %v, connects %d, %d messages after reconnecting; %v",
			stalled.disconnected, stalled.connects, stalled.newReceived, stalled.errs)
	}
	if st.Dropped == 0 || st.Dropped != uint64(slow[0].Dropped) {
		t.Errorf("Dropped %d, PeerSlow event says %d", st.Dropped, slow[0].Dropped)
	}
	// Nothing vanishes: every message addressed to the stalled subscriber's
	// first connection was received or counted as dropped.
	want := uint64(healthy[0].warm+healthy[1].warm+stalled.warm) + 2*uint64(defect1.n) +
		uint64(stalled.oldReceived) + st.Dropped + uint64(stalled.newReceived)
	if st.Sent != want {
		t.Errorf("Sent %d, but subscribers received or were counted as dropped %d", st.Sent, want)
	}
}

// TestBareZmq4SlowSubscriberStallsOthers runs the same scenario on a zmq4
// PUB: the healthy subscribers stall for as long as the slow one does.
func TestBareZmq4SlowSubscriberStallsOthers(t *testing.T) {
	requireBare(t)
	pub := newZmqPub(t)
	defer pub.Close()
	healthy, stalled := defect1.run(t, pub)
	for i, h := range healthy {
		t.Logf("healthy subscriber %d: %d messages, longest gap %v (before seq %d)", i, h.received, h.maxGap.Round(time.Millisecond), h.gapAt)
		if h.maxGap > 350*time.Millisecond {
			t.Errorf("zmq4: healthy subscriber %d stalled for %v while one subscriber did not read", i, h.maxGap.Round(time.Millisecond))
		}
	}
	if !stalled.disconnected {
		t.Errorf("zmq4: the stalled subscriber was never disconnected (%d messages, all on one connection)", stalled.oldReceived)
	}
}
