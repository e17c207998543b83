package coord

import (
	"context"
	"fmt"
	"net"
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

// retain keeps a batch about to be sent.
func (rs *recoveryServer) retain(m *outMsg) {
	_ = rs.history.AppendBatch(m.topic.name, m.first, m.b.Count(), m.frames[1], m.frames[2]) // sequences only grow
}

func (rs *recoveryServer) stats() RecoveryStats {
	return RecoveryStats{Served: rs.served.Load(), Replayed: rs.replayed.Load(), Refused: rs.refused.Load()}
}

func (rs *recoveryServer) handle(_ context.Context, wr wire.Request, reply func(...[]byte) error) error {
	peer, req := wr.Peer, wr.Frames
	rs.active.Add(1)
	defer func() {
		rs.lastDone.Store(time.Now().UnixNano())
		rs.active.Add(-1)
	}()
	p := rs.p
	if wr.TooLarge {
		var id uint32
		if len(req) > 0 {
			id, _ = fetch.RequestID(req[0]) // 0 when even the header is unusable
		}
		return rs.refuse(reply, id, fetch.CodeMalformed, fmt.Sprintf("request of %d bytes is over the size limit", wr.Size))
	}
	if len(req) != 1 {
		return rs.refuse(reply, 0, fetch.CodeMalformed, fmt.Sprintf("request has %d frames, want 1", len(req)))
	}
	r, err := fetch.DecodeRequest(req[0])
	if err != nil {
		id, _ := fetch.RequestID(req[0])
		return rs.refuse(reply, id, fetch.CodeMalformed, err.Error())
	}
	// Keyed by host: a new connection does not earn a fresh budget.
	if !rs.limiter.Allow(host(peer.Remote), time.Now()) {
		return rs.refuse(reply, r.ID, fetch.CodeRateLimited, "too many recovery requests; back off")
	}
	if r.Count() > p.cfg.MaxReplayRange {
		return rs.refuse(reply, r.ID, fetch.CodeRangeTooLarge, fmt.Sprintf("%d sequences asked, at most %d per request", r.Count(), p.cfg.MaxReplayRange))
	}
	rs.served.Add(1)
	done := fetch.Done{Status: fetch.StatusComplete, Epoch: p.cfg.Epoch}
	if r.Publisher != p.cfg.ID || r.Epoch != p.cfg.Epoch {
		done.Status = fetch.StatusUnknownEpoch
		return reply(fetch.AppendDone(nil, r.ID, done))
	}
	b := rs.history.Bounds(r.Topic)
	done.LastSeq, done.FirstHeld = b.Published, b.First
	switch {
	case !b.Known:
		done.Status = fetch.StatusUnknownTopic
		return reply(fetch.AppendDone(nil, r.ID, done))
	case b.First == 0 || b.First > r.From:
		done.Status = fetch.StatusPartial
	}
	if err := rs.replay(r, reply); err != nil {
		return err
	}
	return reply(fetch.AppendDone(nil, r.ID, done))
}

func (rs *recoveryServer) refuse(reply func(...[]byte) error, id uint32, code fetch.ErrorCode, text string) error {
	rs.refused.Add(1)
	return reply(fetch.AppendError(nil, id, fetch.ErrorReply{Code: code, Text: text}))
}

// host returns the host of a "host:port" address.
func host(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// replayCopyBytes bounds what one pass copies out of the history before
// sending it: the history's lock is never held while the socket is
// written, so a slow subscriber cannot stall the publisher's sender, and
// memory per request stays small.
const replayCopyBytes = 256 << 10

// replay sends the retained batches overlapping r as REPLAY responses,
// as they were sent live but for the REPLAY flag: no re-encoding. A first
// or last batch may extend outside r; subscribers drop what they have.
func (rs *recoveryServer) replay(r fetch.Request, reply func(...[]byte) error) error {
	rb, _ := rs.bufs.Get().(*replayBuf)
	if rb == nil {
		rb = &replayBuf{}
	}
	defer rs.bufs.Put(rb)
	rb.hdr = fetch.AppendResponseHeader(rb.hdr[:0], fetch.TypeReplay, r.ID)
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
			if err := reply(hdr, topic, h, buf[s.hdr+envelope.HeaderSize:s.end]); err != nil {
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
	rs.p.lg.Debug("recovery server closed", zap.Uint64("served", rs.served.Load()), zap.Uint64("replayed", rs.replayed.Load()))
}
