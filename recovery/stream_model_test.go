package recovery

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/syncmq/syncmq/proto/fetch"
)

// modelHandler checks a Stream's outputs as they happen: deliveries and
// losses must cover the sequence from the start exactly once, in order,
// and a loss is before-join exactly when it lies at or below the join
// point (publisher-restart, which overrides every label, aside).
type modelHandler struct {
	t          *testing.T
	seed       uint64
	joined     uint64
	expected   uint64 // next sequence a Deliver or Loss must start at
	requests   []fetchReq
	nextID     int
	lost       uint64
	beforeJoin uint64 // of lost
	delivers   uint64
	caught     int
}

type fetchReq struct {
	id       int
	from, to uint64
}

func (m *modelHandler) fail(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("seed %d: %s", m.seed, fmt.Sprintf(format, args...))
}

func (m *modelHandler) Deliver(seq uint64, p []byte, _ bool) {
	if seq != m.expected {
		m.fail("Deliver(%d), want %d", seq, m.expected)
	}
	if !bytes.Equal(p, payloadOf(seq)) {
		m.fail("Deliver(%d) payload %q", seq, p)
	}
	m.expected++
	m.delivers++
}

func (m *modelHandler) Loss(from, to uint64, c Cause) {
	if from != m.expected || to < from {
		m.fail("Loss(%d, %d, %v), want from %d", from, to, c, m.expected)
	}
	m.expected = to + 1
	m.lost += to - from + 1
	switch {
	case c == CausePublisherRestart:
	case c == CauseBeforeJoin:
		if to > m.joined {
			m.fail("Loss(%d, %d, %v) reaches beyond the join point %d", from, to, c, m.joined)
		}
		m.beforeJoin += to - from + 1
	case from <= m.joined:
		m.fail("Loss(%d, %d, %v) at or below the join point %d", from, to, c, m.joined)
	}
}

func (m *modelHandler) Request(from, to uint64) {
	if from != m.expected || to < from {
		m.fail("Request(%d, %d), next is %d", from, to, m.expected)
	}
	m.nextID++
	m.requests = append(m.requests, fetchReq{id: m.nextID, from: from, to: to})
}

func (m *modelHandler) CaughtUp(seq uint64) {
	if seq != m.expected-1 {
		m.fail("CaughtUp(%d), last resolved is %d", seq, m.expected-1)
	}
	m.caught++
}

// event is something arriving at the subscriber from the network.
type event struct {
	kind  byte // 'L' live, 'H' heartbeat, 'P' replay, 'D' done, 'E' error
	seq   uint64
	id    int
	stat  fetch.Status
	first uint64
	code  fetch.ErrorCode
}

type modelParams struct {
	n, start                 uint64
	joined                   uint64
	batch                    uint64 // the publisher replays batches of this many records, whole
	pDrop, pDup              float64
	window                   int
	retention                uint64 // 0: full history
	pNoAnswer, pEpoch, pBusy float64
	pDropReplay              float64
	pAbandon                 float64 // per step: the stream is abandoned
	serverMax                uint64
	maxTick                  time.Duration
	cfg                      StreamConfig
	perfect                  bool
}

func randomParams(r *rand.Rand) modelParams {
	p := modelParams{
		n:       1 + uint64(r.IntN(300)),
		start:   1 + uint64(r.IntN(4)),
		pDrop:   r.Float64() * 0.3,
		pDup:    r.Float64() * 0.2,
		window:  1 + r.IntN(8),
		maxTick: time.Duration(r.IntN(400)) * time.Millisecond,
		batch:   1 + uint64(r.IntN(6)),
		cfg: StreamConfig{
			MaxHeldBytes:   heldCost(1 + r.IntN(60)),
			RepairTimeout:  time.Second,
			MaxRepairRange: uint64(r.IntN(20)),
			RetryBackoff:   100 * time.Millisecond,
		},
	}
	if p.start > p.n {
		p.start = p.n
	}
	p.joined = p.start - 1 // joined where the stream starts
	if r.IntN(2) == 0 {
		p.joined += uint64(r.IntN(int(p.n))) // started before the join point
	}
	switch r.IntN(4) {
	case 0: // a perfect recovery channel: nothing may be lost
		p.perfect = true
		p.maxTick = 0
		p.cfg.MaxHeldBytes = 1 << 40
	case 1: // a flaky one
		p.pNoAnswer, p.pBusy, p.pDropReplay = 0.2, 0.2, 0.1
	case 2: // short retention, small server range limit, rare restarts
		p.retention = 1 + uint64(r.IntN(30))
		p.serverMax = 1 + uint64(r.IntN(10))
		p.pEpoch = 0.02
	case 3: // everything at once
		p.pNoAnswer, p.pBusy, p.pDropReplay, p.pEpoch = 0.1, 0.1, 0.05, 0.01
		p.pAbandon = 0.001
		p.retention = uint64(r.IntN(50))
		p.serverMax = uint64(r.IntN(10))
	}
	return p
}

func runModel(t *testing.T, seed uint64) (StreamStats, *modelHandler) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := randomParams(r)
	m := &modelHandler{t: t, seed: seed, joined: p.joined, expected: p.start}
	s, err := NewStreamJoined(p.cfg, p.start, p.joined, m)
	if err != nil {
		t.Fatal(err)
	}

	// The live feed in publisher order, with drops, duplicates and heartbeats.
	var feed []event
	for q := uint64(1); q <= p.n; q++ {
		if r.Float64() >= p.pDrop {
			feed = append(feed, event{kind: 'L', seq: q})
			if r.Float64() < p.pDup {
				feed = append(feed, event{kind: 'L', seq: q})
			}
		}
		if r.IntN(10) == 0 {
			feed = append(feed, event{kind: 'H', seq: q})
		}
	}
	// Local reordering.
	for i := range feed {
		j := min(len(feed)-1, i+r.IntN(p.window))
		feed[i], feed[j] = feed[j], feed[i]
	}

	var (
		now       = t0
		responses []event
		maxSeen   uint64 // publisher progress as far as the history knows
		epochGone bool
		fi        int
	)
	firstHeld := func() uint64 {
		if p.retention == 0 || maxSeen < p.retention {
			return 1
		}
		return maxSeen - p.retention + 1
	}
	serve := func(f fetchReq) {
		switch {
		case p.perfect:
		case epochGone || r.Float64() < p.pEpoch:
			epochGone = true
			responses = append(responses, event{kind: 'D', id: f.id, stat: fetch.StatusUnknownEpoch})
			return
		case r.Float64() < p.pNoAnswer:
			return
		case r.Float64() < p.pBusy:
			responses = append(responses, event{kind: 'E', id: f.id, code: fetch.CodeBusy})
			return
		case p.serverMax > 0 && f.to-f.from+1 > p.serverMax:
			responses = append(responses, event{kind: 'E', id: f.id, code: fetch.CodeRangeTooLarge})
			return
		}
		fh := firstHeld()
		// Whole batches: the first and last may reach outside the range.
		lo, hi := max(f.from, fh), min(f.to, p.n)
		if lo <= hi {
			lo = max((lo-1)/p.batch*p.batch+1, fh)
			hi = min(((hi-1)/p.batch+1)*p.batch, p.n)
		}
		for q := lo; q <= hi; q++ {
			if p.perfect || r.Float64() >= p.pDropReplay {
				responses = append(responses, event{kind: 'P', seq: q, id: f.id})
			}
		}
		st := fetch.StatusComplete
		if f.from < fh {
			st = fetch.StatusPartial
		}
		responses = append(responses, event{kind: 'D', id: f.id, stat: st, first: fh})
	}
	deliver := func(e event) {
		switch e.kind {
		case 'L':
			maxSeen = max(maxSeen, e.seq)
			s.Live(e.seq, payloadOf(e.seq), now)
		case 'H':
			maxSeen = max(maxSeen, e.seq)
			s.Heartbeat(e.seq, now)
		case 'P':
			s.Replay(e.seq, payloadOf(e.seq), now)
		case 'D', 'E':
			if e.id != m.nextID {
				return // answers an abandoned request: the caller drops it
			}
			if e.kind == 'D' {
				s.RepairDone(e.stat, e.first, now)
			} else {
				s.RepairError(e.code, now)
			}
		}
	}
	step := func() {
		switch k := r.IntN(10); {
		case k < 4 && fi < len(feed):
			deliver(feed[fi])
			fi++
		case k < 6 && len(m.requests) > 0:
			f := m.requests[0]
			m.requests = m.requests[1:]
			serve(f)
		case k < 9 && len(responses) > 0:
			e := responses[0]
			responses = responses[1:]
			deliver(e)
		case r.Float64() < p.pAbandon:
			s.Abandon(CausePublisherRestart, now)
		default:
			if p.maxTick > 0 {
				now = now.Add(time.Duration(r.Int64N(int64(p.maxTick))))
			}
			s.Tick(now)
		}
		if hb := s.Stats().HeldBytes; hb > p.cfg.MaxHeldBytes || hb < 0 {
			t.Fatalf("seed %d: %d bytes held, limit %d", seed, hb, p.cfg.MaxHeldBytes)
		}
	}
	for fi < len(feed) {
		step()
	}
	s.End(p.n, now)
	for i := 0; !s.Finished(); i++ {
		if i > 1_000_000 {
			t.Fatalf("seed %d: not finished: next %d, stats %+v, params %+v", seed, s.Next(), s.Stats(), p)
		}
		if len(m.requests) == 0 && len(responses) == 0 {
			// Nothing in flight: only time can move the stream on.
			now = now.Add(p.cfg.RepairTimeout / 4)
			s.Tick(now)
			continue
		}
		step()
	}

	if m.expected != p.n+1 {
		t.Fatalf("seed %d: resolved up to %d, want %d", seed, m.expected-1, p.n)
	}
	st := s.Stats()
	if st.Delivered != m.delivers || st.Lost != m.lost || st.Delivered+st.Lost != p.n-p.start+1 {
		t.Fatalf("seed %d: stats %+v, handler saw %d delivered %d lost, want %d in all", seed, st, m.delivers, m.lost, p.n-p.start+1)
	}
	if st.Held != 0 || st.HeldBytes != 0 {
		t.Fatalf("seed %d: %d records (%d bytes) still held", seed, st.Held, st.HeldBytes)
	}
	if p.perfect && st.Lost != 0 {
		t.Fatalf("seed %d: perfect recovery channel, yet %d lost (params %+v)", seed, st.Lost, p)
	}
	if st.Gaps > 0 && m.caught == 0 {
		t.Fatalf("seed %d: %d gaps but never caught up", seed, st.Gaps)
	}
	return st, m
}

// TestStreamModel feeds Streams randomly dropped, duplicated and reordered
// sequences and a fake recovery channel that serves, fails, or forgets, and
// checks that every sequence is delivered exactly once in order or reported
// in exactly one Loss, with no holes.
func TestStreamModel(t *testing.T) {
	n := uint64(2000)
	if testing.Short() {
		n = 200
	}
	var sum StreamStats
	var beforeJoin, afterJoin uint64
	for seed := uint64(1); seed <= n; seed++ {
		st, m := runModel(t, seed)
		beforeJoin += m.beforeJoin
		afterJoin += m.lost - m.beforeJoin
		sum.Recovered += st.Recovered
		sum.Lost += st.Lost
		sum.Duplicates += st.Duplicates
		sum.Timeouts += st.Timeouts
		sum.Overflows += st.Overflows
		sum.Stale += st.Stale
	}
	// The model must keep exercising every mechanism, or it proves little.
	if sum.Recovered == 0 || sum.Lost == 0 || sum.Duplicates == 0 || sum.Timeouts == 0 || sum.Overflows == 0 || sum.Stale == 0 ||
		beforeJoin == 0 || afterJoin == 0 {
		t.Fatalf("model exercised too little: %+v, %d lost before the join, %d after", sum, beforeJoin, afterJoin)
	}
}
