package coord

import (
	"context"
	"fmt"
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

	active                    atomic.Int64 // requests being served
	lastDone                  atomic.Int64 // Unix ns when the last request finished
	served, replayed, refused atomic.Uint64
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

// retain stores the records of a batch about to be sent.
func (rs *recoveryServer) retain(topic string, m *envelope.Message) {
	for seq, payload := range m.Records() {
		_ = rs.history.Append(topic, seq, m.Time, payload) // sequences only grow
	}
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
		rs.refused.Add(1)
		var id uint32
		if len(req) > 0 {
			id, _ = fetch.RequestID(req[0]) // 0 when even the header is unusable
		}
		return reply(fetch.AppendError(nil, id, fetch.ErrorReply{Code: fetch.CodeMalformed, Text: fmt.Sprintf("request of %d bytes is over the size limit", wr.Size)}))
	}
	if len(req) != 1 {
		rs.refused.Add(1)
		return reply(fetch.AppendError(nil, 0, fetch.ErrorReply{Code: fetch.CodeMalformed, Text: fmt.Sprintf("request has %d frames, want 1", len(req))}))
	}
	r, err := fetch.DecodeRequest(req[0])
	if err != nil {
		rs.refused.Add(1)
		id, _ := fetch.RequestID(req[0])
		return reply(fetch.AppendError(nil, id, fetch.ErrorReply{Code: fetch.CodeMalformed, Text: err.Error()}))
	}
	// Keyed by connection: each subscriber keeps one recovery connection,
	// and many subscribers may share a host.
	if !rs.limiter.Allow(peer.Remote, time.Now()) {
		rs.refused.Add(1)
		return reply(fetch.AppendError(nil, r.ID, fetch.ErrorReply{Code: fetch.CodeRateLimited, Text: "too many recovery requests; back off"}))
	}
	if r.Count() > p.cfg.MaxReplayRange {
		rs.refused.Add(1)
		return reply(fetch.AppendError(nil, r.ID, fetch.ErrorReply{Code: fetch.CodeRangeTooLarge,
			Text: fmt.Sprintf("%d sequences asked, at most %d per request", r.Count(), p.cfg.MaxReplayRange)}))
	}
	rs.served.Add(1)
	last := p.lastSent(r.Topic)
	done := fetch.Done{Status: fetch.StatusComplete, LastSeq: last, Epoch: p.cfg.Epoch}
	if r.Publisher != p.cfg.ID || r.Epoch != p.cfg.Epoch {
		done.Status = fetch.StatusUnknownEpoch
		return reply(fetch.AppendDone(nil, r.ID, done))
	}
	first, _, known := rs.history.Range(r.Topic, 0, 0, nil)
	switch {
	case !known:
		done.Status = fetch.StatusUnknownTopic
		return reply(fetch.AppendDone(nil, r.ID, done))
	case first == 0 || first > r.From:
		done.Status = fetch.StatusPartial
	}
	done.FirstHeld = first
	if err := rs.replay(r, reply); err != nil {
		return err
	}
	return reply(fetch.AppendDone(nil, r.ID, done))
}

// replayCopyBytes bounds what one pass copies out of the history before
// sending it, so memory stays small and the socket is never written while
// the history's lock is held (that would let a slow subscriber stall the
// publisher's sender).
const replayCopyBytes = 256 << 10

// replay sends the held records of r as REPLAY-flagged batches.
func (rs *recoveryServer) replay(r fetch.Request, reply func(...[]byte) error) error {
	p := rs.p
	hdr := fetch.AppendResponseHeader(nil, fetch.TypeReplay, r.ID)
	header := envelope.Header{Kind: envelope.KindData, Flags: envelope.FlagReplay, Publisher: p.cfg.ID, Epoch: p.cfg.Epoch}
	for from := r.From; from <= r.To; {
		var batches []envelope.Frames
		var b envelope.Builder
		copied, next := 0, from
		seal := func() {
			if b.Count() > 0 {
				frames, _ := b.Finish()
				batches = append(batches, frames)
				b = envelope.Builder{}
			}
		}
		rs.history.Range(r.Topic, from, r.To, func(seq uint64, t int64, payload []byte) bool {
			if b.Count() > 0 && (seq != next || b.Size()+len(payload) > p.cfg.MaxBatchBytes || b.Count() == envelope.MaxRecords) {
				seal()
				if copied >= replayCopyBytes {
					return false
				}
			}
			if b.Count() == 0 {
				h := header
				h.Seq, h.Time = seq, t
				b.Begin(nil, r.Topic, h)
			}
			b.Add(payload)
			copied += len(payload) + 4
			next = seq + 1
			return true
		})
		seal()
		if len(batches) == 0 {
			return nil
		}
		for _, f := range batches {
			if err := reply(hdr, f[0], f[1], f[2]); err != nil {
				return err
			}
			rs.replayed.Add(uint64(binaryCount(f[1])))
		}
		from = next
	}
	return nil
}

// binaryCount reads the record count from an encoded header.
func binaryCount(header []byte) uint16 {
	h, _ := envelope.ParseHeader(header)
	return h.Count
}

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
