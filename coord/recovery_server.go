package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncmq/syncmq/internal/mutation"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/wire"
	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// recoveryServer answers FETCH and FETCH_MANY requests on the
// publisher's recovery endpoint from what it retained (memory History,
// or the journal with DataDir).
type recoveryServer struct {
	p       *Publisher
	store   retained
	limiter *recovery.Limiter
	turns   *recovery.Turns // who takes from the replay budget next
	srv     endpointServer
	replays sync.Pool // *replayFrames, reused across requests
	// wait sleeps d for the replay budget (timers on the network; the
	// simulator does not sleep).
	wait func(ctx context.Context, d time.Duration) error

	served, replayed, refused, forbidden atomic.Uint64
}

// RecoveryStats counts the recovery endpoint's work.
type RecoveryStats struct {
	Served   uint64 // FETCH requests answered with REPLAYs and a DONE
	Replayed uint64 // records resent
	Refused  uint64 // requests answered with an ERROR
	// Forbidden counts the requests among Refused whose certificate
	// identity the allow-list does not name.
	Forbidden uint64
	// TurnWaits counts replayed batches that waited for their turn at
	// the replay budget behind another connection's.
	TurnWaits uint64
}

func newRecoveryServer(p *Publisher, store retained) (*recoveryServer, error) {
	lim, err := recovery.NewLimiter(p.cfg.RecoveryLimit)
	if err != nil {
		return nil, err
	}
	return &recoveryServer{p: p, store: store, limiter: lim, turns: recovery.NewTurns(), wait: sleep}, nil
}

// serve binds the recovery endpoint.
func (rs *recoveryServer) serve(bind string) error {
	srv, err := wire.Serve(bind, wire.ServerConfig{Logger: rs.p.lg, TLS: rs.p.cfg.TLS.wireTLS(), MaxConnsPerIP: rs.p.cfg.Wire.MaxConnsPerIP}, rs.handle)
	if err != nil {
		return err
	}
	rs.srv = srv
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rs *recoveryServer) stats() RecoveryStats {
	return RecoveryStats{Served: rs.served.Load(), Replayed: rs.replayed.Load(), Refused: rs.refused.Load(), Forbidden: rs.forbidden.Load(),
		TurnWaits: rs.turns.Stats().Waits}
}

func (rs *recoveryServer) handle(ctx context.Context, wr wire.Request, reply func(...[]byte) error) error {
	req := wr.Frames
	var id uint32
	if len(req) > 0 {
		id, _ = fetch.RequestID(req[0]) // 0 when even the header is unusable
	}
	if !rs.p.allow.allows(wr.Peer.Identity) {
		rs.forbidden.Add(1)
		rs.p.rl.Warn("refused-fetch-forbidden", "recovery request refused: identity not allowed",
			zap.String("identity", wr.Peer.Identity), zap.String("remote", wr.Peer.Remote))
		return rs.refuse(reply, id, fetch.CodeForbidden, "this certificate's identity is not on the publisher's allow-list")
	}
	switch {
	case wr.TooLarge:
		return rs.refuse(reply, id, fetch.CodeMalformed, fmt.Sprintf("request of %d bytes is over the size limit", wr.Size))
	case len(req) != 1:
		return rs.refuse(reply, id, fetch.CodeMalformed, fmt.Sprintf("request has %d frames, want 1", len(req)))
	}
	// Keyed by host: a new connection does not earn a fresh budget.
	host := recovery.HostKey(wr.Peer.Remote)
	if !rs.limiter.Allow(host, rs.p.now()) {
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
		if errors.Is(err, fetch.ErrVersion) {
			return rs.refuse(reply, id, fetch.CodeVersion, fmt.Sprintf("%v; this server speaks version %d", err, fetch.Version))
		}
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
		if err := rs.replay(ctx, host, id, epoch, rg, reply); err != nil {
			if errors.Is(err, errReplayBudget) {
				rs.p.rl.Warn("replay-budget", "recovery request answered rate limited: no replay budget within its patience; the client asks again for the rest",
					zap.String("remote", wr.Peer.Remote), zap.Duration("patience", replayPatience))
				return rs.refuse(reply, id, fetch.CodeRateLimited, "replay bandwidth exhausted; back off and ask for the rest")
			}
			return err
		}
		rs.unreadable(&outcomes[i], epoch, rg) // after the replay, which may have found damage
	}
	if many {
		return reply(fetch.AppendDoneMany(nil, id, fetch.DoneMany{Epoch: rs.p.cfg.Epoch, Ranges: outcomes}))
	}
	o := outcomes[0]
	return reply(fetch.AppendDone(nil, id, fetch.Done{Status: o.Status, FirstHeld: o.FirstHeld, LastSeq: o.LastSeq, Epoch: rs.p.cfg.Epoch}))
}

// outcome decides one range's status: unknown epoch, unknown topic,
// beyond the end (FETCH_MANY only: a 1.0 DONE cannot say it, so FETCH
// keeps answering complete), partial or complete. With a journal, earlier
// epochs are served as the current one is; LastSeq of a closed epoch is
// its final sequence, and what a range asks above it is partial, not
// beyond the end.
func (rs *recoveryServer) outcome(pub envelope.ID, epoch uint64, rg fetch.Range, many bool) fetch.RangeDone {
	if pub != rs.p.cfg.ID {
		return fetch.RangeDone{Status: fetch.StatusUnknownEpoch}
	}
	b := rs.store.bounds(epoch, rg.Topic)
	d := fetch.RangeDone{FirstHeld: b.first, LastSeq: b.published}
	switch {
	case !b.epochKnown && epoch != rs.p.cfg.Epoch:
		d.Status = fetch.StatusUnknownEpoch
	case !b.known:
		d.Status = fetch.StatusUnknownTopic
	case b.closed && rg.To > b.published:
		// An earlier epoch gets no more records, yet the range reaches
		// above its final sequence: a journal that lost its unsynced tail
		// in a power loss ends the epoch below records its subscribers
		// saw. They are not held; "complete" or "beyond end" would deny
		// what was published, so the client reports them lost
		// (beyond-retention), with whatever else of the range it lacks
		// after the replay.
		d.Status, d.FirstHeld = fetch.StatusPartial, 0
	case rg.From > b.published && many:
		d.Status = fetch.StatusBeyondEnd
	case b.first == 0 || b.first > rg.From:
		d.Status = fetch.StatusPartial
	default:
		d.Status = fetch.StatusComplete
	}
	return d
}

// unreadable turns a complete outcome into partial when part of the range
// was published but cannot be read back (journal damage): the replay
// skipped it, and the subscriber must report exactly it lost rather than
// take the range as complete. A Stream gives up everything it lacks below
// "first held" (cause beyond-retention), so first held is the sequence
// after the first unreadable run, where the replay resumed; if the run
// reaches the last sequence, first held is 0 ("first held" may not exceed
// "last"), and the Stream gives up what it lacks of the whole range. A
// later run in the range is reported by the next request, which starts
// at it.
func (rs *recoveryServer) unreadable(d *fetch.RangeDone, epoch uint64, rg fetch.Range) {
	if d.Status != fetch.StatusComplete {
		return // partial already: the next request reaches the damage
	}
	_, last, ok := rs.store.unreadable(epoch, rg.Topic, rg.From, rg.To)
	if !ok {
		return
	}
	d.Status, d.FirstHeld = fetch.StatusPartial, 0
	if last < d.LastSeq {
		d.FirstHeld = last + 1
	}
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
// The budget of all hosts is handed out in turns (recovery.Turns): fair
// shares of bytes among the hosts that wait and among the connections of
// each, so every connection fetching gets its share, whatever the others
// do. The
// waiter whose turn it is sleeps until the global budget holds n bytes;
// the others are parked. A host over its own budget waits that out
// without its turn, keeping nobody else waiting.
func (rs *recoveryServer) pace(ctx context.Context, host string, n int) error {
	start := rs.p.now()
	for {
		left := replayPatience - rs.p.now().Sub(start)
		if left <= 0 {
			return errReplayBudget
		}
		if err := rs.turns.Wait(ctx, host, n, left); err != nil {
			if errors.Is(err, recovery.ErrNoTurn) {
				return errReplayBudget
			}
			return err
		}
		for {
			hostWait, globalWait := rs.limiter.TakeSplit(host, n, rs.p.now())
			if hostWait == 0 && globalWait == 0 {
				rs.turns.Release()
				return nil
			}
			wait := max(hostWait, globalWait)
			if rs.p.now().Sub(start)+wait > replayPatience {
				rs.turns.Release()
				return errReplayBudget
			}
			if hostWait > 0 {
				rs.turns.Release()
			}
			if err := rs.wait(ctx, wait); err != nil {
				if hostWait == 0 {
					rs.turns.Release()
				}
				return err
			}
			if hostWait > 0 {
				break // wait for a turn again
			}
		}
	}
}

// replay sends the retained batches overlapping r as REPLAY responses,
// as they were sent live but for the REPLAY flag: no re-encoding. A first
// or last batch may extend outside r; subscribers drop what they have.
// Each batch waits for the replay bandwidth budget of its host and of all
// hosts (RecoveryLimit), so replays cannot crowd out the live stream.
func (rs *recoveryServer) replay(ctx context.Context, host string, id uint32, epoch uint64, r fetch.Range, reply func(...[]byte) error) error {
	rf, _ := rs.replays.Get().(*replayFrames)
	if rf == nil {
		rf = &replayFrames{}
	}
	defer rs.replays.Put(rf)
	rf.hdr = fetch.AppendResponseHeader(rf.hdr[:0], fetch.TypeReplay, id)
	hdr := rf.hdr
	send := func(f envelope.Frames, count int) error {
		envelope.SetFlags(f[1], envelope.FlagReplay)
		if err := rs.pace(ctx, host, len(hdr)+len(f[0])+len(f[1])+len(f[2])); err != nil {
			return err
		}
		// A kept slice: passing the frames one by one would allocate
		// one per REPLAY.
		rf.frames = append(rf.frames[:0], hdr, f[0], f[1], f[2])
		err := reply(rf.frames...)
		clear(rf.frames)
		if err != nil {
			return err
		}
		rs.replayed.Add(uint64(count))
		return nil
	}
	if mutation.Is(mutation.DropLastReplay) {
		return rs.replayDroppingLast(epoch, r, send)
	}
	return rs.store.replay(epoch, r.Topic, r.From, r.To, send)
}

// replayDroppingLast is a planted bug (package mutation): the replay
// leaves its last batch out and still answers DONE complete.
func (rs *recoveryServer) replayDroppingLast(epoch uint64, r fetch.Range, send func(envelope.Frames, int) error) error {
	var held envelope.Frames
	count := 0
	return rs.store.replay(epoch, r.Topic, r.From, r.To, func(f envelope.Frames, n int) error {
		if count > 0 {
			if err := send(held, count); err != nil {
				return err
			}
		}
		for i := range f {
			held[i] = append(held[i][:0:0], f[i]...)
		}
		count = n
		return nil
	})
}

// replayFrames is what one replay reuses: the REPLAY response header and
// the frame list handed to reply.
type replayFrames struct {
	hdr    []byte
	frames [][]byte
}

func (rs *recoveryServer) close() {
	if rs.srv != nil {
		rs.srv.Close()
	}
	rs.p.lg.Debug("recovery server closed", zap.Uint64("served", rs.served.Load()), zap.Uint64("replayed", rs.replayed.Load()))
}
