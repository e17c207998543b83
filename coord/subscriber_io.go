package coord

import (
	"context"
	"fmt"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/fetch"
	"github.com/syncmq/syncmq/proto/handshake"
	"go.uber.org/zap"
)

// subscriberIO is what the Subscriber's state asks of the world outside
// it: the time, and the requests that travel to a publisher's sync and
// recovery endpoints. Answers come back to the run goroutine as inputs
// (onResult), never as return values, so the state machine does not care
// whether they travel over sockets on other goroutines (netIO, what
// NewSubscriber uses) or through a simulated network on the same
// goroutine (the simulator in sim_*_test.go).
type subscriberIO interface {
	now() time.Time
	// handshake sends req, a READY quoting nonce, to ps's sync endpoint;
	// the answer comes back as an ackResult.
	handshake(ps *pubState, req []byte, nonce string)
	// bye sends req, a BYE, to l's sync endpoint; best effort, nothing
	// comes back.
	bye(l *link, req []byte)
	// fetch queues a repair or probe on l; false if the queue is full
	// (the caller answers itself "busy", and the stream retries).
	fetch(l *link, job fetchJob) bool
}

// netIO is the subscriberIO of a Subscriber on real sockets: requests
// run on goroutines of the Subscriber's group, each link's repairs on its
// fetcher.
type netIO struct{ s *Subscriber }

func (n netIO) now() time.Time { return timeNow() }

func (n netIO) handshake(ps *pubState, req []byte, nonce string) {
	s := n.s
	l := ps.link // run may point ps at another link meanwhile (a failover)
	s.g.Go(func() {
		reply, err := l.sync.Request(s.ctx, [][]byte{req})
		s.post(decodeAck(ps, nonce, reply, err))
	})
}

func (n netIO) bye(l *link, req []byte) {
	s := n.s
	s.g.Go(func() {
		// Every attempt the client makes: the publisher's job succeeds
		// only when it hears this.
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.HandshakeAttempts)*s.cfg.HandshakeTimeout)
		defer cancel()
		if _, err := l.sync.Request(ctx, [][]byte{req}); err != nil {
			s.lg.Debug("bye not delivered", zap.Error(err))
		}
	})
}

func (n netIO) fetch(l *link, job fetchJob) bool {
	select {
	case l.jobs <- job:
		return true
	default:
		return false
	}
}

// readyRequest encodes the READY this subscriber sends ps, quoting
// ps.nonce.
func (s *Subscriber) readyRequest(ps *pubState) []byte {
	return handshake.Encode(handshake.Ready{V: handshake.Version, Type: handshake.TypeReady, Subscriber: s.cfg.ID,
		Publisher: ps.id.String(), Epoch: ps.epoch, Nonce: ps.nonce, Topics: s.cfg.Subscribe, Forms: s.forms(),
		From: s.catchUpFrom(ps)})
}

// catchUpFrom is the READY's from: where this subscriber's first join
// of ps starts every topic when that is before the join (StartAt
// earliest or a sequence; 1 when it followed an earlier epoch), so the
// publisher feeds it the history on its data connection. On a rejoin
// it is where its streams stand (rejoinFrom). 0 with StateDir, whose
// checkpoints start each topic on its own.
func (s *Subscriber) catchUpFrom(ps *pubState) uint64 {
	switch {
	case s.ckpt != nil:
		return 0
	case ps.joined:
		return rejoinFrom(ps)
	case ps.restarted:
		return 1
	case s.cfg.StartAt == StartAtJoin:
		return 0
	}
	return s.startAt(0)
}

// rejoinFrom is the READY's from when this subscriber rejoins ps on a
// new connection (a reconnect, a failover to another relay): the first
// record its streams lack, so the publisher feeds what it missed on the
// data connection, at the pace it reads, instead of one FETCH after
// another on a recovery budget shared with strangers. One from serves
// every topic, and a topic further on gets again what it has (dropped as
// duplicates): when the streams stand more than maxRejoinSpread apart,
// or none is left to finish, it is 0 and gaps are fetched as before.
func rejoinFrom(ps *pubState) uint64 {
	var lo, hi uint64
	for _, ts := range ps.streams {
		if ts.abandoned || ts.st.Finished() {
			continue
		}
		n := ts.st.Next()
		if lo == 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	if lo == 0 || hi-lo > maxRejoinSpread {
		return 0
	}
	return lo
}

// maxRejoinSpread bounds what a rejoin's catch-up may send again of a
// topic further on than the others: one FETCH's worth of sequences.
const maxRejoinSpread = 1 << 16

// byeRequest encodes the BYE to ps: it quotes the nonce of the last
// accepted READY and says how many records published after the join were
// lost (those published before it were never this subscriber's to get).
func (s *Subscriber) byeRequest(ps *pubState) []byte { return handshake.Encode(s.bye(ps).Ready) }

// byeMsg is a BYE and the incarnation it confirms.
type byeMsg struct {
	handshake.Ready
	id    envelope.ID
	epoch uint64
}

func (s *Subscriber) bye(ps *pubState) byeMsg {
	var lost uint64
	for _, ts := range ps.streams {
		lost += ts.lostAfterJoin
	}
	r := handshake.Ready{V: handshake.Version, Type: handshake.TypeBye, Subscriber: s.cfg.ID, Publisher: ps.id.String(),
		Epoch: ps.epoch, Nonce: ps.boundNonce, Lost: lost}
	return byeMsg{Ready: r, id: ps.id, epoch: ps.epoch}
}

// decodeAck turns the answer to a READY (or the failure to get one) into
// what run acts on.
func decodeAck(ps *pubState, nonce string, reply [][]byte, err error) ackResult {
	r := ackResult{ps: ps, nonce: nonce}
	switch {
	case err != nil:
		r.err = err
	case len(reply) != 1:
		r.err = &handshake.Error{Code: handshake.CodeMalformed, Msg: fmt.Sprintf("reply has %d frames", len(reply))}
	default:
		r.ack, r.err = handshake.DecodeReply(reply[0])
	}
	return r
}

// fetchAnswer follows the answer to one FETCH (a batch of one job) or
// FETCH_MANY: it says, reply by reply, what run must be told. It holds
// no socket, so the network fetcher and the simulator share it.
type fetchAnswer struct {
	batch      []fetchJob
	many       bool
	id         uint32
	byTopic    map[string]fetchJob
	progressAt time.Time
}

func newFetchAnswer(batch []fetchJob) *fetchAnswer {
	a := &fetchAnswer{batch: batch, many: len(batch) > 1, id: batch[0].req.ID}
	if a.many {
		a.byTopic = make(map[string]fetchJob, len(batch))
		for _, job := range batch {
			a.byTopic[job.req.Topic] = job
		}
	}
	return a
}

// request encodes the FETCH or FETCH_MANY.
func (a *fetchAnswer) request() []byte {
	if !a.many {
		return fetch.EncodeRequest(nil, a.batch[0].req)
	}
	first := a.batch[0].req
	m := fetch.ManyRequest{ID: first.ID, Publisher: first.Publisher, Epoch: first.Epoch, Ranges: make([]fetch.Range, len(a.batch))}
	for i, job := range a.batch {
		m.Ranges[i] = fetch.Range{Topic: job.req.Topic, From: job.req.From, To: job.req.To}
	}
	return fetch.EncodeManyRequest(nil, m)
}

// fetchStep is what one reply means for run: a REPLAY for job (replay
// set; its message aliases the reply), results to post, and whether the
// answer is complete.
type fetchStep struct {
	replay   *fetchJob
	msg      *envelope.Message
	results  []fetchResult
	finished bool
}

// next interprets one reply, received at now. An error means the reply
// was not understood: the caller stops reading and reports the batch
// busy (failed), as for a broken connection.
func (a *fetchAnswer) next(reply [][]byte, now time.Time, l *link) (fetchStep, error) {
	resp, err := fetch.DecodeResponse(reply)
	if err != nil {
		return fetchStep{}, err
	}
	if resp.ID != a.id {
		return fetchStep{}, nil // an answer to an abandoned request
	}
	var st fetchStep
	switch resp.Type {
	case fetch.TypeReplay:
		m := resp.Message
		if !a.many {
			st.replay, st.msg = &a.batch[0], &m
			return st, nil
		}
		if job, ok := a.byTopic[string(m.Topic)]; ok {
			st.replay, st.msg = &job, &m
		}
		// The later ranges wait their turn: keep their deadlines off.
		if now.Sub(a.progressAt) > 100*time.Millisecond {
			a.progressAt = now
			for _, job := range a.batch {
				st.results = append(st.results, fetchResult{job: job, progress: true})
			}
		}
		return st, nil
	case fetch.TypeDone:
		if a.many {
			return fetchStep{}, fmt.Errorf("coord: DONE answering FETCH_MANY")
		}
		d := resp.Done
		st.results = append(st.results, fetchResult{job: a.batch[0], done: &fetch.RangeDone{Status: d.Status, FirstHeld: d.FirstHeld, LastSeq: d.LastSeq}})
	case fetch.TypeDoneMany:
		if !a.many {
			return fetchStep{}, fmt.Errorf("coord: DONE_MANY answering FETCH")
		}
		for i, job := range a.batch {
			if i < len(resp.Many.Ranges) {
				d := resp.Many.Ranges[i]
				st.results = append(st.results, fetchResult{job: job, done: &fetch.RangeDone{Status: d.Status, FirstHeld: d.FirstHeld, LastSeq: d.LastSeq}})
			}
		}
	case fetch.TypeError:
		code := resp.Error.Code
		if a.many && code == fetch.CodeMalformed && l.singleFetch.CompareAndSwap(false, true) {
			// A protocol 1.0 publisher: retried as single FETCHes after
			// the back-off.
			code = fetch.CodeBusy
		}
		for _, job := range a.batch {
			st.results = append(st.results, fetchResult{job: job, code: code})
		}
	default:
		return fetchStep{}, fmt.Errorf("coord: %v answering a fetch", resp.Type)
	}
	st.finished = true
	return st, nil
}

// failed is what run is told when the answer did not complete: every job
// of the batch is retried after the back-off.
func (a *fetchAnswer) failed() []fetchResult {
	out := make([]fetchResult, len(a.batch))
	for i, job := range a.batch {
		out[i] = fetchResult{job: job, code: fetch.CodeBusy}
	}
	return out
}
