package recovery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/proto/fetch"
)

// recorder is a Handler that records outputs in a compact text form:
// D<seq> deliver, R<from>-<to> request, L<from>-<to>:<cause> loss, C<seq> caught up.
type recorder struct {
	out      []string
	payloads map[uint64]string
}

func (r *recorder) Deliver(seq uint64, p []byte, _ bool) {
	r.out = append(r.out, fmt.Sprintf("D%d", seq))
	if r.payloads == nil {
		r.payloads = make(map[uint64]string)
	}
	r.payloads[seq] = string(p)
}
func (r *recorder) Request(from, to uint64) { r.out = append(r.out, fmt.Sprintf("R%d-%d", from, to)) }
func (r *recorder) Loss(from, to uint64, c Cause) {
	r.out = append(r.out, fmt.Sprintf("L%d-%d:%v", from, to, c))
}
func (r *recorder) CaughtUp(seq uint64) { r.out = append(r.out, fmt.Sprintf("C%d", seq)) }

func (r *recorder) take() string {
	s := strings.Join(r.out, " ")
	r.out = r.out[:0]
	return s
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func payloadOf(seq uint64) []byte { return []byte("p" + strconv.FormatUint(seq, 10)) }

// heldCost is what n held records of payloadOf count against MaxHeldBytes:
// their copies take the allocator's smallest size class.
func heldCost(n int) int64 {
	return int64(n) * (int64(cap(append([]byte(nil), payloadOf(1)...))) + HeldRecordOverhead)
}

// apply runs one DSL input against s. Inputs:
//
//	live N | replay N | replay A-B | hb N | end N | tick DUR | done STATUS FIRST
//	err CODE | hint CAUSE | reconnect | abandon CAUSE | feeding
func apply(t *testing.T, s *Stream, now *time.Time, in string) {
	t.Helper()
	f := strings.Fields(in)
	num := func(i int) uint64 {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			t.Fatalf("bad input %q: %v", in, err)
		}
		return n
	}
	switch f[0] {
	case "live":
		s.Live(num(1), payloadOf(num(1)), *now)
	case "replay":
		a, b, ok := strings.Cut(f[1], "-")
		lo, _ := strconv.ParseUint(a, 10, 64)
		hi := lo
		if ok {
			hi, _ = strconv.ParseUint(b, 10, 64)
		}
		for q := lo; q <= hi; q++ {
			s.Replay(q, payloadOf(q), *now)
		}
	case "hb":
		s.Heartbeat(num(1), *now)
	case "end":
		s.End(num(1), *now)
	case "tick":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			t.Fatalf("bad input %q: %v", in, err)
		}
		*now = now.Add(d)
		s.Tick(*now)
	case "done":
		st := map[string]fetch.Status{"complete": fetch.StatusComplete, "partial": fetch.StatusPartial, "epoch": fetch.StatusUnknownEpoch,
			"topic": fetch.StatusUnknownTopic, "beyond": fetch.StatusBeyondEnd, "bogus": 9}[f[1]]
		s.RepairDone(st, num(2), *now)
	case "err":
		c := map[string]fetch.ErrorCode{"malformed": fetch.CodeMalformed, "limited": fetch.CodeRateLimited, "range": fetch.CodeRangeTooLarge, "busy": fetch.CodeBusy}[f[1]]
		s.RepairError(c, *now)
	case "hint":
		c, err := ParseCause(f[1])
		if err != nil {
			t.Fatal(err)
		}
		s.SetCauseHint(c)
	case "reconnect":
		s.Reconnected(*now)
	case "feeding":
		s.Feeding(*now)
	case "abandon":
		c, err := ParseCause(f[1])
		if err != nil {
			t.Fatal(err)
		}
		s.Abandon(c, *now)
	default:
		t.Fatalf("unknown input %q", in)
	}
}

type streamStep struct{ in, want string }

func TestStreamTable(t *testing.T) {
	short := DefaultStreamConfig()
	short.MaxRepairRange = 0
	tests := []struct {
		name   string
		cfg    func(*StreamConfig)
		next   uint64
		joined uint64 // 0: next-1, as NewStream
		steps  []streamStep
		stats  *StreamStats
	}{
		{name: "in order", steps: []streamStep{
			{"live 1", "D1"}, {"live 2", "D2"}, {"live 3", "D3"},
		}, stats: &StreamStats{Delivered: 3}},
		{name: "start mid-epoch", next: 41, steps: []streamStep{
			{"live 40", ""}, {"live 41", "D41"}, {"live 42", "D42"},
		}, stats: &StreamStats{Delivered: 2, Duplicates: 1}},
		{name: "duplicates and old", steps: []streamStep{
			{"live 1", "D1"}, {"live 1", ""}, {"live 2", "D2"}, {"live 1", ""}, {"replay 2", ""},
		}, stats: &StreamStats{Delivered: 2, Duplicates: 3}},
		{name: "reorder fills gap live", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"live 3", ""}, {"live 2", "D2 D3 C3"},
			{"done complete 1", ""}, // the abandoned request's DONE is stale
			{"live 4", "D4"},
		}, stats: &StreamStats{Delivered: 4, Duplicates: 1, Gaps: 1, Requests: 1, Stale: 1}},
		{name: "gap repaired", steps: []streamStep{
			{"live 1", "D1"}, {"live 4", "R2-3"}, {"live 5", ""},
			{"replay 2", "D2"}, {"replay 3", "D3 D4 D5 C5"}, {"done complete 1", ""},
			{"live 6", "D6"},
		}, stats: &StreamStats{Delivered: 6, Recovered: 2, Gaps: 1, Requests: 1, Stale: 1, HeldBytesPeak: heldCost(2)}},
		{name: "replayed batch extends outside the range", steps: []streamStep{
			{"live 1", "D1"}, {"live 5", "R2-4"},
			{"replay 1-7", "D2 D3 D4 D5 C5 D6 D7"}, {"done complete 1", ""}, {"live 8", "D8"},
		}, stats: &StreamStats{Delivered: 8, Recovered: 5, Duplicates: 2, Gaps: 1, Requests: 1, Stale: 1, HeldBytesPeak: heldCost(1)}},
		{name: "replayed batch beyond the known end opens a gap", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"replay 2", "D2 D3 C3"}, {"replay 5-6", "R4-4"},
			{"replay 4", "D4 D5 D6 C6"},
		}},
		{name: "gap repaired, DONE before the last hold flushes", steps: []streamStep{
			{"live 1", "D1"}, {"live 4", "R2-3"}, {"replay 2", "D2"}, {"replay 3", "D3 D4 C4"},
		}},
		{name: "gap partial", steps: []streamStep{
			{"live 1", "D1"}, {"live 10", "R2-9"}, {"replay 5-9", ""},
			{"done partial 5", "L2-4:beyond-retention D5 D6 D7 D8 D9 D10 C10"},
		}, stats: &StreamStats{Delivered: 7, Recovered: 5, Gaps: 1, Lost: 3, Requests: 1}},
		{name: "gap partial nothing held", steps: []streamStep{
			{"live 1", "D1"}, {"live 4", "R2-3"}, {"done partial 0", "L2-3:beyond-retention D4 C4"},
		}},
		{name: "gap partial first held beyond range", steps: []streamStep{
			{"live 1", "D1"}, {"live 4", "R2-3"}, {"done partial 7", "L2-3:beyond-retention D4 C4"},
		}},
		{name: "unknown topic", steps: []streamStep{
			{"live 1", "D1"}, {"hb 3", "R2-3"}, {"done topic 0", "L2-3:beyond-retention C3"},
		}},
		{name: "beyond end", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"done beyond 0", "L2-2:unknown D3 C3"},
		}},
		{name: "beyond end keeps the label", steps: []streamStep{
			{"live 1", "D1"}, {"hint reconnect", ""}, {"live 3", "R2-2"}, {"done beyond 0", "L2-2:reconnect D3 C3"},
		}},
		{name: "bogus status", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"done bogus 0", "L2-2:unknown D3 C3"},
		}},
		// At the bound the newest held records are let go and repaired
		// again after the gap before them: nothing repairable is lost.
		{name: "held overflow", cfg: func(c *StreamConfig) { c.MaxHeldBytes = heldCost(2) }, steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"live 4", ""},
			{"live 5", ""}, // 4 and 5 let go
			{"replay 2", "D2 D3 R4-5"}, {"replay 4", "D4"}, {"replay 5", "D5 C5"},
		}, stats: &StreamStats{Delivered: 5, Recovered: 3, Gaps: 1, Requests: 2, Shed: 2, HeldBytesPeak: heldCost(3)}},
		{name: "held overflow by a byte", cfg: func(c *StreamConfig) { c.MaxHeldBytes = heldCost(2) - 1 }, steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"live 4", ""},
			{"replay 2", "D2 D3 R4-4"}, {"replay 4", "D4 C4"},
		}},
		{name: "held overflow with a later gap", cfg: func(c *StreamConfig) { c.MaxHeldBytes = heldCost(2) }, steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"live 5", ""},
			{"live 6", ""}, // 5 and 6 let go
			{"replay 2", "D2 D3 R4-6"}, {"replay 4", "D4"}, {"replay 5", "D5"}, {"replay 6", "D6 C6"},
		}},
		{name: "held overflow record inside the gap", cfg: func(c *StreamConfig) { c.MaxHeldBytes = heldCost(2) }, steps: []streamStep{
			{"live 1", "D1"}, {"live 5", "R2-4"}, {"live 6", ""},
			{"live 3", ""}, // 5 and 6 let go; R2-4 still covers 4
			{"replay 2", "D2 D3"}, {"replay 4", "D4 R5-6"}, {"replay 5", "D5"}, {"replay 6", "D6 C6"},
		}},
		// Once the range behind is more than shedFactor bounds, the live
		// feed outruns the repair: every gap up to the newest held
		// record is given up and the stream is at live again.
		{name: "held overflow far behind", cfg: func(c *StreamConfig) { c.MaxHeldBytes = heldCost(2) }, steps: []streamStep{
			{"live 1", "D1"}, {"hb 20", "R2-20"}, {"live 21", ""}, {"live 22", ""},
			{"live 23", "L2-20:slow-consumer D21 D22 D23 C23"},
		}, stats: &StreamStats{Delivered: 4, Gaps: 1, Lost: 19, Requests: 1, Overflows: 1, HeldBytesPeak: heldCost(3)}},
		{name: "timeout", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"tick 4s", ""}, {"tick 999ms", ""},
			{"tick 1ms", "L2-2:timeout D3 C3"}, {"live 2", ""}, {"tick 10s", ""},
		}, stats: &StreamStats{Delivered: 2, Duplicates: 1, Gaps: 1, Lost: 1, Requests: 1, Timeouts: 1}},
		{name: "replay progress extends the deadline", steps: []streamStep{
			{"live 1", "D1"}, {"live 5", "R2-4"}, {"tick 4s", ""}, {"replay 2", "D2"},
			{"tick 4s", ""}, {"tick 1s", "L3-4:timeout D5 C5"},
		}},
		{name: "heartbeat tail repaired", steps: []streamStep{
			{"live 1", "D1"}, {"hb 1", ""}, {"hb 3", "R2-3"}, {"hb 3", ""}, {"replay 2-3", "D2 D3 C3"},
		}},
		{name: "heartbeat tail lost", steps: []streamStep{
			{"live 1", "D1"}, {"hb 3", "R2-3"}, {"tick 5s", "L2-3:timeout C3"}, {"live 4", "D4"},
		}},
		{name: "end tail lost", steps: []streamStep{
			{"live 1", "D1"}, {"end 3", "R2-3"}, {"replay 2", "D2"}, {"done partial 2", "R3-3"},
			{"done complete 2", "L3-3:unknown C3"},
		}},
		{name: "multiple gaps queue behind the outstanding repair", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"live 5", ""}, {"live 7", ""},
			{"replay 2", "D2 D3 R4-4"}, // the old request's DONE is then discarded by id
			{"replay 4", "D4 D5 R6-6"},
			{"replay 6", "D6 D7 C7"},
		}, stats: &StreamStats{Delivered: 7, Recovered: 3, Gaps: 3, Requests: 3}},
		{name: "multiple gaps, first DONE empty", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"live 5", ""},
			{"done complete 1", "L2-2:unknown D3 R4-4"},
			{"done complete 1", "L4-4:unknown D5 C5"},
		}},
		{name: "complete with progress asks for the rest", steps: []streamStep{
			{"live 1", "D1"}, {"live 5", "R2-4"}, {"replay 2", "D2"},
			{"done complete 1", "R3-4"}, {"done complete 1", "L3-4:unknown D5 C5"},
		}},
		{name: "max repair range", cfg: func(c *StreamConfig) { c.MaxRepairRange = 2 }, steps: []streamStep{
			{"live 1", "D1"}, {"live 6", "R2-3"}, {"replay 2-3", "D2 D3 R4-5"},
			{"replay 4-5", "D4 D5 D6 C6"},
		}},
		{name: "before-join", joined: 4, steps: []streamStep{
			{"live 5", "R1-4"}, {"replay 3-4", ""}, {"done partial 3", "L1-2:before-join D3 D4 D5 C5"},
		}},
		{name: "before-join via heartbeat", next: 1, joined: 11, steps: []streamStep{
			{"hb 11", "R1-11"}, {"tick 5s", "L1-11:before-join C11"},
		}},
		// Joined before anything was published: the first records were
		// published after the join, so losing them is not before-join.
		{name: "first records lost after the join", steps: []streamStep{
			{"live 5", "R1-4"}, {"replay 3-4", ""}, {"done partial 3", "L1-2:beyond-retention D3 D4 D5 C5"},
		}},
		{name: "first records lost after a mid-epoch join", next: 10, steps: []streamStep{
			{"hb 11", "R10-11"}, {"tick 5s", "L10-11:timeout C11"},
		}},
		{name: "first records lost after the join, hinted", next: 10, steps: []streamStep{
			{"hint reconnect", ""}, {"live 12", "R10-11"}, {"tick 5s", "L10-11:reconnect D12 C12"},
		}},
		{name: "gap across the join point", joined: 5, steps: []streamStep{
			{"hb 8", "R1-8"}, {"done partial 0", "L1-5:before-join L6-8:beyond-retention C8"},
		}},
		{name: "hint labels the part after the join point", joined: 5, steps: []streamStep{
			{"hint reconnect", ""}, {"hb 8", "R1-8"}, {"tick 5s", "L1-5:before-join L6-8:reconnect C8"},
		}},
		{name: "hint kept past a gap before the join point", joined: 5, steps: []streamStep{
			{"hint reconnect", ""}, {"live 3", "R1-2"}, {"tick 5s", "L1-2:before-join D3 C3"},
			{"live 7", "R4-6"}, {"tick 5s", "L4-5:before-join L6-6:reconnect D7 C7"},
		}},
		{name: "repaired before the join point", joined: 3, steps: []streamStep{
			{"hb 3", "R1-3"}, {"replay 1-3", "D1 D2 D3 C3"}, {"live 4", "D4"},
		}},
		{name: "hint survives in-order delivery", steps: []streamStep{
			{"live 1", "D1"}, {"hint slow-consumer", ""}, {"live 2", "D2"},
			{"live 4", "R3-3"}, {"tick 5s", "L3-3:slow-consumer D4 C4"},
		}},
		{name: "hint cleared by a heartbeat showing nothing missing", steps: []streamStep{
			{"live 1", "D1"}, {"hint slow-consumer", ""}, {"live 2", "D2"}, {"hb 2", ""},
			{"live 4", "R3-3"}, {"tick 5s", "L3-3:timeout D4 C4"},
		}},
		{name: "hint kept by a heartbeat during a repair", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"hint reconnect", ""}, {"hb 3", ""},
			{"replay 2", "D2 D3 C3"}, {"live 5", "R4-4"}, {"tick 5s", "L4-4:reconnect D5 C5"},
		}},
		{name: "hint labels the next gap only", steps: []streamStep{
			{"live 1", "D1"}, {"hint publisher-overflow", ""}, {"live 3", "R2-2"}, {"live 5", ""},
			{"tick 5s", "L2-2:publisher-overflow D3 R4-4"}, {"tick 5s", "L4-4:timeout D5 C5"},
		}},
		{name: "hint unknown clears", steps: []streamStep{
			{"live 1", "D1"}, {"hint reconnect", ""}, {"hint unknown", ""}, {"live 3", "R2-2"}, {"tick 5s", "L2-2:timeout D3 C3"},
		}},
		{name: "labels split one loss", cfg: func(c *StreamConfig) { c.MaxHeldBytes = heldCost(1) }, steps: []streamStep{
			{"live 1", "D1"}, {"hint reconnect", ""}, {"hb 3", "R2-3"}, {"hb 5", ""}, {"live 7", ""},
			{"live 8", "L2-3:reconnect L4-6:slow-consumer D7 D8 C8"},
		}},
		{name: "unknown epoch is definitive", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"live 5", ""},
			{"done epoch 0", "L2-2:publisher-restart D3 L4-4:publisher-restart D5 C5"},
			{"live 7", "L6-6:publisher-restart D7 C7"},
		}},
		{name: "unknown epoch overrides labels", steps: []streamStep{
			{"live 1", "D1"}, {"hint reconnect", ""}, {"live 3", "R2-2"}, {"done epoch 0", "L2-2:publisher-restart D3 C3"},
		}},
		{name: "abandon", steps: []streamStep{
			{"live 1", "D1"}, {"hint reconnect", ""}, {"live 3", "R2-2"}, {"live 6", ""}, {"hb 8", ""},
			{"abandon publisher-restart", "L2-2:publisher-restart D3 L4-5:publisher-restart D6 L7-8:publisher-restart C8"},
			{"done complete 2", ""}, {"live 10", "L9-9:publisher-restart D10 C10"}, {"tick 10s", ""},
		}, stats: &StreamStats{Delivered: 4, Gaps: 4, Lost: 6, Requests: 1, Stale: 1}},
		{name: "abandon with nothing missing", steps: []streamStep{
			{"live 1", "D1"}, {"abandon timeout", ""}, {"live 2", "D2"},
		}},
		{name: "busy retries after backoff", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"err busy", ""}, {"tick 99ms", ""},
			{"tick 1ms", "R2-2"}, {"replay 2", "D2 D3 C3"},
		}},
		{name: "rate limited keeps the deadline", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"tick 4950ms", ""}, {"err limited", ""},
			{"tick 50ms", "L2-2:timeout D3 C3"},
		}},
		{name: "backoff ends when the gap fills live", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"err busy", ""}, {"live 2", "D2 D3 C3"}, {"tick 1s", ""},
		}},
		{name: "range too large halves", cfg: func(c *StreamConfig) { c.MaxRepairRange = 0 }, steps: []streamStep{
			{"live 1", "D1"}, {"live 10", "R2-9"}, {"err range", "R2-5"}, {"err range", "R2-3"},
			{"replay 2-3", "D2 D3 R4-5"}, {"replay 4-9", "D4 D5 R6-7 D6 D7 R8-9 D8 D9 D10 C10"},
			{"live 20", "R11-19"}, // the cap resets after catching up
		}},
		{name: "range too large for one sequence", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"err range", "L2-2:unknown D3 C3"},
		}},
		{name: "malformed gives up", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"err malformed", "L2-2:unknown D3 C3"}, {"err busy", ""},
		}, stats: &StreamStats{Delivered: 2, Gaps: 1, Lost: 1, Requests: 1, Stale: 1}},
		{name: "reconnect repeats the request and labels the next gap", steps: []streamStep{
			{"live 1", "D1"}, {"live 3", "R2-2"}, {"reconnect", "R2-2"}, {"replay 2", "D2 D3 C3"},
			{"live 5", "R4-4"}, {"tick 5s", "L4-4:reconnect D5 C5"},
		}},
		{name: "replays out of order are held", steps: []streamStep{
			{"live 1", "D1"}, {"live 5", "R2-4"}, {"replay 3", ""}, {"replay 3", ""}, {"replay 4", ""},
			{"replay 2", "D2 D3 D4 D5 C5"},
		}, stats: &StreamStats{Delivered: 5, Recovered: 3, Duplicates: 1, Gaps: 1, Requests: 1}},
		{name: "stale DONE without request", steps: []streamStep{
			{"done complete 1", ""}, {"live 1", "D1"},
		}, stats: &StreamStats{Delivered: 1, Stale: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := short
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			next := tc.next
			if next == 0 {
				next = 1
			}
			joined := tc.joined
			if joined == 0 {
				joined = next - 1
			}
			rec := &recorder{}
			s, err := NewStreamJoined(cfg, next, joined, rec)
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			for i, st := range tc.steps {
				apply(t, s, &now, st.in)
				if got := rec.take(); got != st.want {
					t.Fatalf("step %d %q: got %q, want %q", i, st.in, got, st.want)
				}
			}
			for seq, p := range rec.payloads {
				if p != string(payloadOf(seq)) {
					t.Errorf("seq %d delivered payload %q", seq, p)
				}
			}
			if tc.stats != nil {
				got := s.Stats()
				if tc.stats.HeldBytesPeak == 0 {
					got.HeldBytesPeak = 0
				}
				if got != *tc.stats {
					t.Errorf("stats\n got %+v\nwant %+v", got, *tc.stats)
				}
			}
		})
	}
}

func TestStreamHeldPayloadIsCopied(t *testing.T) {
	rec := &recorder{}
	s, err := NewStream(DefaultStreamConfig(), 1, rec)
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte("two")
	s.Live(2, buf, t0)
	copy(buf, "XXX")
	s.Live(1, []byte("one"), t0)
	if got := rec.payloads[2]; got != "two" {
		t.Fatalf("held payload = %q, want %q", got, "two")
	}
}

func TestStreamEndFinished(t *testing.T) {
	rec := &recorder{}
	s, _ := NewStream(DefaultStreamConfig(), 1, rec)
	now := t0
	apply(t, s, &now, "live 1")
	if s.Finished() {
		t.Fatal("finished before End")
	}
	apply(t, s, &now, "end 2")
	if s.Finished() {
		t.Fatal("finished with seq 2 outstanding")
	}
	if from, to, ok := s.Pending(); !ok || from != 2 || to != 2 {
		t.Fatalf("Pending = %d, %d, %v", from, to, ok)
	}
	if d, ok := s.Deadline(); !ok || !d.Equal(t0.Add(DefaultStreamConfig().RepairTimeout)) {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	apply(t, s, &now, "replay 2")
	if !s.Finished() || s.Next() != 3 {
		t.Fatalf("Finished = %v, Next = %d", s.Finished(), s.Next())
	}
	if _, ok := s.Deadline(); ok {
		t.Fatal("deadline while idle")
	}
	if _, _, ok := s.Pending(); ok {
		t.Fatal("pending while idle")
	}
}

func TestStreamDeadlineDuringBackoff(t *testing.T) {
	rec := &recorder{}
	s, _ := NewStream(DefaultStreamConfig(), 1, rec)
	now := t0
	for _, in := range []string{"live 1", "live 3", "err busy"} {
		apply(t, s, &now, in)
	}
	if d, ok := s.Deadline(); !ok || !d.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("Deadline = %v, %v; want the backoff's end", d, ok)
	}
}

// TestStreamFeedingHoldsTheDeadline: while a feed on another path says
// the records are coming, neither an outstanding repair nor one waiting
// out its backoff times out; when the feed stops saying so, the repair
// times out RepairTimeout after the last word. Idle, it changes nothing.
func TestStreamFeedingHoldsTheDeadline(t *testing.T) {
	rec := &recorder{}
	s, _ := NewStream(DefaultStreamConfig(), 1, rec)
	now := t0
	timeout := DefaultStreamConfig().RepairTimeout
	apply(t, s, &now, "feeding")
	if _, ok := s.Deadline(); ok {
		t.Fatal("feeding an idle stream set a deadline")
	}
	for _, in := range []string{"live 1", "live 3"} {
		apply(t, s, &now, in)
	}
	for i := range 3 { // active, then backing off, then active again
		now = now.Add(timeout - time.Millisecond)
		apply(t, s, &now, "feeding")
		if i == 1 {
			apply(t, s, &now, "err busy")
		}
		apply(t, s, &now, "tick 1ms")
		if st := s.Stats(); st.Timeouts != 0 || st.Lost != 0 {
			t.Fatalf("round %d: timed out while fed: %+v", i, st)
		}
	}
	apply(t, s, &now, "tick "+timeout.String())
	if st := s.Stats(); st.Timeouts != 1 || st.Lost != 1 {
		t.Fatalf("no timeout once the feed stopped: %+v", st)
	}
}

type reentrant struct {
	recorder
	s *Stream
}

func (r *reentrant) Deliver(seq uint64, p []byte, _ bool) { r.s.Tick(t0) }

func TestStreamReentryPanics(t *testing.T) {
	r := &reentrant{}
	s, _ := NewStream(DefaultStreamConfig(), 1, r)
	r.s = s
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on reentrant call")
		}
	}()
	s.Live(1, nil, t0)
}

func TestStreamConfigValidate(t *testing.T) {
	ok := DefaultStreamConfig()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*StreamConfig){
		func(c *StreamConfig) { c.MaxHeldBytes = 0 },
		func(c *StreamConfig) { c.RepairTimeout = 0 },
		func(c *StreamConfig) { c.RepairTimeout = 5 * time.Nanosecond },
		func(c *StreamConfig) { c.RepairTimeout = MinRepairTimeout - 1 },
		func(c *StreamConfig) { c.RetryBackoff = -1 },
		func(c *StreamConfig) { c.RetryBackoff = 0 },
		func(c *StreamConfig) { c.RetryBackoff = time.Microsecond },
	}
	for i, f := range bad {
		c := ok
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: Validate = %v, want ErrConfig", i, err)
		}
		if _, err := NewStream(c, 1, &recorder{}); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: NewStream = %v, want ErrConfig", i, err)
		}
	}
	floors := StreamConfig{MaxHeldBytes: 1, RepairTimeout: MinRepairTimeout, RetryBackoff: MinRetryBackoff}
	if err := floors.Validate(); err != nil {
		t.Errorf("the floors themselves: %v", err)
	}
	all := StreamConfig{RepairTimeout: time.Nanosecond}
	if err := all.Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("three bad fields: Validate = %v, want three problems, one per line", err)
	}
	if _, err := NewStream(ok, 0, &recorder{}); !errors.Is(err, ErrConfig) {
		t.Errorf("next 0: %v", err)
	}
	if _, err := NewStreamJoined(ok, 0, 5, &recorder{}); !errors.Is(err, ErrConfig) {
		t.Errorf("NewStreamJoined next 0: %v", err)
	}
	if _, err := NewStream(ok, 1, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("nil handler: %v", err)
	}
}

func TestCauseNames(t *testing.T) {
	want := "unknown before-join slow-consumer publisher-overflow publisher-restart reconnect beyond-retention timeout publisher-gone"
	var got []string
	for _, c := range Causes() {
		got = append(got, c.String())
		p, err := ParseCause(c.String())
		if err != nil || p != c {
			t.Errorf("ParseCause(%q) = %v, %v", c, p, err)
		}
		b, _ := c.MarshalText()
		var u Cause
		if err := u.UnmarshalText(b); err != nil || u != c {
			t.Errorf("UnmarshalText(%q) = %v, %v", b, u, err)
		}
	}
	if strings.Join(got, " ") != want {
		t.Errorf("causes = %q", strings.Join(got, " "))
	}
	if _, err := ParseCause("nope"); err == nil {
		t.Error("ParseCause accepted nope")
	}
	if s := Cause(200).String(); s != "Cause(200)" {
		t.Errorf("Cause(200) = %q", s)
	}
}

func BenchmarkStreamLiveInOrder(b *testing.B) {
	s, _ := NewStream(DefaultStreamConfig(), 1, discard{})
	p := make([]byte, 100)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Live(uint64(i)+1, p, t0)
	}
}

// BenchmarkStreamGapRepair opens a 10-record gap every 100 records and
// repairs it from replays.
func BenchmarkStreamGapRepair(b *testing.B) {
	s, _ := NewStream(DefaultStreamConfig(), 1, discard{})
	p := make([]byte, 100)
	b.ReportAllocs()
	seq := uint64(1)
	for i := 0; i < b.N; i++ {
		for k := 0; k < 90; k++ {
			if k == 10 {
				seq += 10
			}
			s.Live(seq, p, t0)
			seq++
		}
		for q := seq - 90; q < seq-80; q++ {
			s.Replay(q, p, t0)
		}
		s.RepairDone(fetch.StatusComplete, 1, t0)
	}
}

type discard struct{}

func (discard) Deliver(uint64, []byte, bool) {}
func (discard) Request(uint64, uint64)       {}
func (discard) Loss(uint64, uint64, Cause)   {}
func (discard) CaughtUp(uint64)              {}

// TestStreamHeldBytes checks the memory accounting behind a gap: payload
// capacity plus HeldRecordOverhead per record, buffers reused at their
// full capacity, the bound enforced to the byte, and nothing left counted
// once the gap is resolved.
func TestStreamHeldBytes(t *testing.T) {
	const size = 1024 // a size class of its own: the copy's capacity is exact
	per := int64(size + HeldRecordOverhead)
	cfg := DefaultStreamConfig()
	cfg.MaxHeldBytes = 10 * per
	rec := &recorder{}
	s, err := NewStream(cfg, 1, rec)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, size)
	s.Live(1, big, t0)
	for q := uint64(3); q <= 12; q++ {
		s.Live(q, big, t0)
	}
	if st := s.Stats(); st.Held != 10 || st.HeldBytes != 10*per || st.Overflows != 0 {
		t.Fatalf("at the bound: %+v", st)
	}
	rec.take()
	s.Live(13, big, t0) // one byte over is over: the newest are let go
	if got := rec.take(); got != "" {
		t.Fatalf("overflow: %q", got)
	}
	if st := s.Stats(); st.Held != 5 || st.HeldBytes != 5*per || st.HeldBytesPeak != 11*per || st.Shed != 6 || st.Overflows != 0 {
		t.Fatalf("after the overflow: %+v", st)
	}
	s.Replay(2, big, t0) // the gap's repair; then what was let go is asked for again
	if got := rec.take(); got != "D2 D3 D4 D5 D6 D7 R8-13" {
		t.Fatalf("after the gap's repair: %q", got)
	}
	for q := uint64(8); q <= 13; q++ {
		s.Replay(q, big, t0)
	}
	if got := rec.take(); got != "D8 D9 D10 D11 D12 D13 C13" {
		t.Fatalf("repair of what was let go: %q", got)
	}
	if st := s.Stats(); st.Held != 0 || st.HeldBytes != 0 || st.Lost != 0 {
		t.Fatalf("after the repairs: %+v", st)
	}
	// A small record held in a reused 1 KiB buffer counts the whole buffer.
	s.Live(15, []byte("x"), t0)
	if st := s.Stats(); st.Held != 1 || st.HeldBytes != per {
		t.Fatalf("reused buffer: %+v", st)
	}
	s.Replay(14, nil, t0)
	if st := s.Stats(); st.Held != 0 || st.HeldBytes != 0 {
		t.Fatalf("after the repair: %+v", st)
	}
	// A record larger than the bound is delivered once the gap before it
	// is given up.
	s.Live(17, make([]byte, 11*size), t0)
	if got := rec.take(); !strings.HasSuffix(got, "L16-16:slow-consumer D17 C17") {
		t.Fatalf("oversized record: %q", got)
	}
	if st := s.Stats(); st.HeldBytes != 0 {
		t.Fatalf("oversized record still counted: %+v", st)
	}
}

// TestStreamReleasesLargeHeldSlice checks that a large gap's slots are not
// kept once it is resolved.
func TestStreamReleasesLargeHeldSlice(t *testing.T) {
	s, _ := NewStream(DefaultStreamConfig(), 1, discard{})
	for q := uint64(2); q <= 2*maxIdleHeld; q++ {
		s.Live(q, nil, t0)
	}
	if cap(s.held) <= maxIdleHeld {
		t.Fatalf("held slice capacity %d", cap(s.held))
	}
	s.Replay(1, nil, t0)
	if cap(s.held) != 0 || s.Stats().HeldBytes != 0 {
		t.Fatalf("held slice capacity %d after the gap, %d bytes", cap(s.held), s.Stats().HeldBytes)
	}
}
