package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/envelope"
	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// recoveryServer answers FETCH requests on the publisher's recovery
// endpoint from its retained history.
type recoveryServer struct {
	p       *Publisher
	history *recovery.History
	limiter *recovery.Limiter
	srv     *wire.Server

	bufs                      sync.Pool    // *replayBuf, reused across requests
	active                    atomic.Int64 // requests being served
	lastDone                  atomic.Int64 // Unix ns when the last request finished
	served, replayed, refused atomic.Uint64
}

// RecoveryStats counts the recovery endpoint's work.
type RecoveryStats struct {
	Served   uint64 // FETCH requests answered with REPLAYs and a DONE
	Replayed uint64 // records resent
	Refused  uint64 // requests answered with an ERROR
}

func newRecoveryServer(p *Publisher) (*recoveryServer, error) {
	h, err := recovery.NewHistory(p.cfg.History)
	if err != nil {
		return nil, err
	}
	lim, err := recovery.NewLimiter(p.cfg.RecoveryLimit)
	if err != nil {
		return nil, err
	}
	rs := &recoveryServer{p: p, history: h, limiter: lim}
	rs.srv, err = wire.Serve(p.cfg.RecoveryBind, wire.ServerConfig{Logger: p.lg}, rs.handle)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// retain keeps a batch about to be sent: each run of a topic as the DATA
// message a replay sends.
func (rs *recoveryServer) retain(m *outMsg) {
	m.eachRun(func(r *outRun) {
		_ = rs.history.AppendBatch(r.topic.name, r.seq, r.count, r.header, r.payload) // sequences only grow
	})
}

func (rs *recoveryServer) stats() RecoveryStats {
	return RecoveryStats{Served: rs.served.Load(), Replayed: rs.replayed.Load(), Refused: rs.refused.Load()}
}

func (rs *recoveryServer) handle(ctx context.Context, wr wire.Request, reply func(...[]byte) error) error {
	rs.active.Add(1)
	defer func() {
		rs.lastDone.Store(time.Now().UnixNano())
		rs.active.Add(-1)
	}()
	req := wr.Frames
	var id uint32
	if len(req) > 0 {
		id, _ = fetch.RequestID(req[0]) // 0 when even the header is unusable
	}
	switch {
	case wr.TooLarge:
		return rs.refuse(reply, id, fetch.CodeMalformed, fmt.Sprintf("request of %d bytes is over the size limit", wr.Size))
	case len(req) != 1:
		return rs.refuse(reply, id, fetch.CodeMalformed, fmt.Sprintf("request has %d frames, want 1", len(req)))
	}
	// Keyed by host: a new connection does not earn a fresh budget.
	host := recovery.HostKey(wr.Peer.Remote)
	if !rs.limiter.Allow(host, time.Now()) {
		return rs.refuse(reply, id, fetch.CodeRateLimited, "too many recovery requests; back off")
	}
	var (
		pub    envelope.ID
		epoch  uint64
		ranges []fetch.Range
		many   bool
	)
	if t, _ := fetch.RequestType(req[0]); t == fetch.TypeFetchMany {
		m, err := fetch.DecodeManyRequest(req[0])
		if err != nil {
			return rs.refuse(reply, id, fetch.CodeMalformed, err.Error())
		}
		pub, epoch, ranges, many = m.Publisher, m.Epoch, m.Ranges, true
	} else {
		r, err := fetch.DecodeRequest(req[0])
		if err != nil {
			return rs.refuse(reply, id, fetch.CodeMalformed, err.Error())
		}
		pub, epoch, ranges = r.Publisher, r.Epoch, []fetch.Range{{Topic: r.Topic, From: r.From, To: r.To}}
	}
	if n := (fetch.ManyRequest{Ranges: ranges}).Count(); n > rs.p.cfg.MaxReplayRange {
		return rs.refuse(reply, id, fetch.CodeRangeTooLarge, fmt.Sprintf("%d sequences asked, at most %d per request", n, rs.p.cfg.MaxReplayRange))
	}
	rs.served.Add(1)
	outcomes := make([]fetch.RangeDone, len(ranges))
	for i, rg := range ranges {
		outcomes[i] = rs.outcome(pub, epoch, rg, many)
		if outcomes[i].Status > fetch.StatusPartial {
			continue // nothing to replay
		}
		if err := rs.replay(ctx, host, id, rg, reply); err != nil {
			if errors.Is(err, errReplayBudget) {
				return rs.refuse(reply, id, fetch.CodeRateLimited, "replay bandwidth exhausted; back off and ask for the rest")
			}
			return err
		}
	}
	if many {
		return reply(fetch.AppendDoneMany(nil, id, fetch.DoneMany{Epoch: rs.p.cfg.Epoch, Ranges: outcomes}))
	}
	o := outcomes[0]
	return reply(fetch.AppendDone(nil, id, fetch.Done{Status: o.Status, FirstHeld: o.FirstHeld, LastSeq: o.LastSeq, Epoch: rs.p.cfg.Epoch}))
}

// outcome decides one range's status: unknown epoch, unknown topic,
// beyond the end (FETCH_MANY only: a 1.0 DONE cannot say it, so FETCH
// keeps answering complete), partial or complete.
func (rs *recoveryServer) outcome(pub envelope.ID, epoch uint64, rg fetch.Range, many bool) fetch.RangeDone {
	if pub != rs.p.cfg.ID || epoch != rs.p.cfg.Epoch {
		return fetch.RangeDone{Status: fetch.StatusUnknownEpoch}
	}
	b := rs.history.Bounds(rg.Topic)
	d := fetch.RangeDone{FirstHeld: b.First, LastSeq: b.Published}
	switch {
	case !b.Known:
		d.Status = fetch.StatusUnknownTopic
	case rg.From > b.Published && many:
		d.Status = fetch.StatusBeyondEnd
	case b.First == 0 || b.First > rg.From:
		d.Status = fetch.StatusPartial
	default:
		d.Status = fetch.StatusComplete
	}
	return d
}

func (rs *recoveryServer) refuse(reply func(...[]byte) error, id uint32, code fetch.ErrorCode, text string) error {
	rs.refused.Add(1)
	return reply(fetch.AppendError(nil, id, fetch.ErrorReply{Code: code, Text: text}))
}

// replayPatience is how long one batch of a replay may wait for the
// replay bandwidth budget before the request is answered "rate limited".
const replayPatience = time.Second

var errReplayBudget = errors.New("coord: replay budget exhausted")

// pace waits until host may send n replay bytes, at most replayPatience.
func (rs *recoveryServer) pace(ctx context.Context, host string, n int) error {
	waited := time.Duration(0)
	for {
		wait, ok := rs.limiter.Take(host, n, time.Now())
		if ok {
			return nil
		}
		if waited+wait > replayPatience {
			return errReplayBudget
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		waited += wait
	}
}

// replayCopyBytes bounds what one pass copies out of the history before
// sending it: the history's lock is never held while the socket is
// written, so a slow subscriber cannot stall the publisher's sender, and
// memory per request stays small.
const replayCopyBytes = 256 << 10

// replay sends the retained batches overlapping r as REPLAY responses,
// as they were sent live but for the REPLAY flag: no re-encoding. A first
// or last batch may extend outside r; subscribers drop what they have.
// Each batch waits for the replay bandwidth budget of its host and of all
// hosts (RecoveryLimit), so replays cannot crowd out the live stream.
func (rs *recoveryServer) replay(ctx context.Context, host string, id uint32, r fetch.Range, reply func(...[]byte) error) error {
	rb, _ := rs.bufs.Get().(*replayBuf)
	if rb == nil {
		rb = &replayBuf{}
	}
	defer rs.bufs.Put(rb)
	rb.hdr = fetch.AppendResponseHeader(rb.hdr[:0], fetch.TypeReplay, id)
	rb.topic = append(rb.topic[:0], r.Topic...)
	hdr, topic := rb.hdr, rb.topic
	for from := r.From; from <= r.To; {
		buf, spans := rb.buf[:0], rb.spans[:0]
		next := from
		rs.history.Batches(r.Topic, from, r.To, func(b recovery.Batch) bool {
			off := len(buf)
			buf = append(append(buf, b.Header...), b.Payload...)
			spans = append(spans, span{off, len(buf), b.Count})
			next = b.Last() + 1
			return len(buf) < replayCopyBytes
		})
		rb.buf, rb.spans = buf, spans
		if len(spans) == 0 {
			return nil
		}
		for _, s := range spans {
			h := buf[s.hdr : s.hdr+envelope.HeaderSize]
			envelope.SetFlags(h, envelope.FlagReplay)
			if err := rs.pace(ctx, host, len(hdr)+len(topic)+s.end-s.hdr); err != nil {
				return err
			}
			// Passing a kept slice spares an allocation per REPLAY.
			rb.frames = append(rb.frames[:0], hdr, topic, h, buf[s.hdr+envelope.HeaderSize:s.end])
			if err := reply(rb.frames...); err != nil {
				return err
			}
			rs.replayed.Add(uint64(s.count))
		}
		if next <= from { // cannot happen: batches hold increasing sequences
			return nil
		}
		from = next
	}
	return nil
}

// replayBuf is what one replay copies batches into, reused across
// requests so a replay allocates nothing per record.
type replayBuf struct {
	hdr, topic, buf []byte
	spans           []span
	frames          [][]byte
}

// span locates one copied batch in replayBuf.buf.
type span struct{ hdr, end, count int }

// linger waits until done reports true, or no request has been served
// for d, or ctx ends.
func (rs *recoveryServer) linger(ctx context.Context, d time.Duration, done func() bool) {
	t := time.NewTicker(min(d/10, 10*time.Millisecond))
	defer t.Stop()
	start := time.Now().UnixNano()
	for {
		last := max(rs.lastDone.Load(), start)
		if rs.active.Load() == 0 && (done() || time.Since(time.Unix(0, last)) >= d) {
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (rs *recoveryServer) close() {
	rs.srv.Close()
	rs.history.Close() // after the last replay: its memory is outside the heap
	rs.p.lg.Debug("recovery server closed", zap.Uint64("served", rs.served.Load()), zap.Uint64("replayed", rs.replayed.Load()))
}
