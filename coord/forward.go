package coord

import (
	"context"
	"errors"
	"fmt"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/recovery"
)

// ErrSequence is what PublishSeq and Skip return for a sequence at or
// below the topic's last one.
var ErrSequence = errors.New("coord: sequence not above the topic's last")

// ErrForeign is what Forward returns for a message that is not a DATA or
// MULTI message of this publisher's id and epoch.
var ErrForeign = errors.New("coord: not a DATA or MULTI message of this publisher's id and epoch")

// ErrNotWhole is what Forward returns for a MULTI message it cannot send
// on as it is (one topic, a topic named twice or without records; a
// BatchBuilder never makes one): publish its records one by one.
var ErrNotWhole = errors.New("coord: message cannot be forwarded whole")

// ErrSkipJournal is what PublishSeq, Skip and PublishLoss return when
// they would skip sequences on a publisher with DataDir: the journal keeps
// every sequence of a stream from 1, without gaps.
var ErrSkipJournal = errors.New("coord: the journal (DataDir) cannot keep a stream that skips sequences")

// PublishSeq is Publish with the sequence chosen by the caller, for a
// node that forwards another publisher's stream under that publisher's id
// and epoch (a relay): the record gets sequence seq of topic, which must
// be above the topic's last sequence. Sequences it jumps over are never
// published: subscribers see a gap, and a FETCH for it is answered "not
// held" (a relay reports such a range with its cause first, see
// PublishLoss). It blocks and fails as Publish does.
func (p *Publisher) PublishSeq(ctx context.Context, topic string, seq uint64, payload []byte) error {
	for {
		p.mu.Lock()
		err := p.core.publishSeq(topic, seq, payload)
		changed := p.changed
		p.mu.Unlock()
		if err == nil {
			signal(p.wake)
			return nil
		}
		if err := p.waitCore(ctx, changed, err); err != nil {
			return err
		}
	}
}

// Forward is PublishSeq for a whole DATA or MULTI message m, as it
// arrived from the publisher whose stream this one forwards (a relay):
// its records go out with their sequences and m's time, in one message
// byte for byte as m was (without a REPLAY flag; a MULTI goes to
// connections on the DATA form as one DATA message per run, as any
// MULTI does), and into the history, without being encoded again. m must
// have passed envelope.Decode (a Subscriber's Event.Data did), carry this
// publisher's id and epoch (else ErrForeign), and start above each of its
// topics' last sequence (else ErrSequence); a jump leaves a gap as
// PublishSeq's does. A MULTI that no BatchBuilder would make returns
// ErrNotWhole. Forward copies m before it returns. It blocks and fails as
// Publish does; a record above MaxPayload fails it whole, and so does a
// new topic PublishSeq would refuse.
func (p *Publisher) Forward(ctx context.Context, m *envelope.Message) error {
	if (m.Kind != envelope.KindData && m.Kind != envelope.KindMulti) || m.Publisher != p.cfg.ID || m.Epoch != p.cfg.Epoch {
		return fmt.Errorf("%w: %s of %s epoch %d", ErrForeign, m.Kind, m.Publisher.Short(), m.Epoch)
	}
	for {
		p.mu.Lock()
		err := p.core.forwardData(m)
		changed := p.changed
		p.mu.Unlock()
		if err == nil {
			signal(p.wake)
			return nil
		}
		if err := p.waitCore(ctx, changed, err); err != nil {
			return err
		}
	}
}

// forwardData accepts the DATA or MULTI message m whole, as a batch of
// its own. It checks everything before it changes anything.
func (c *pubCore) forwardData(m *envelope.Message) error {
	switch c.phase {
	case phaseProbing:
		return errWaitQuorum
	case phaseFailed:
		return c.failure
	case phaseEnding, phaseEnded:
		return ErrClosed
	}
	if c.cfg.QuorumLost == LostPause && c.q.lost() {
		return errPaused
	}
	f := &c.fwd
	if err := f.read(m, c.cfg.MaxPayload); err != nil {
		return err
	}
	added := 0
	for i, e := range f.entries {
		ts := c.topics[e.topic]
		var last uint64
		if ts != nil {
			last = ts.seq
		}
		if ts != nil && e.first <= last {
			return fmt.Errorf("%w: %q seq %d, last %d", ErrSequence, e.topic, e.first, last)
		}
		if c.cfg.DataDir != "" && e.first-1 > last {
			return fmt.Errorf("%w: %q from %d to %d", ErrSkipJournal, e.topic, last+1, e.first-1)
		}
		if ts == nil {
			if err := c.checkNewTopic(e.topic, added); err != nil {
				return err
			}
			added++
		}
		f.entries[i].ts = ts
	}
	if c.pending >= c.cfg.MaxPending {
		return errWaitSpace
	}
	for i, e := range f.entries {
		if e.ts == nil {
			f.entries[i].ts, _ = c.addTopic(e.topic) // checked above
		}
		if ts := f.entries[i].ts; e.first-1 > ts.seq {
			_ = c.skip(e.topic, e.first-1) // checked above: in phase, above the last, no journal
		}
	}
	if c.open != nil {
		c.sealed = append(c.sealed, c.open)
		c.open = nil
	}
	b := c.newBatch()
	c.batches++
	f.tss = f.tss[:0]
	for _, e := range f.entries {
		f.tss = append(f.tss, e.ts)
	}
	b.beginData(c.batches, f.tss, m)
	c.sealed = append(c.sealed, b)
	c.pending += b.bytes
	for _, e := range f.entries {
		e.ts.seq = e.first + uint64(e.n) - 1
	}
	clear(f.tss)
	clear(f.entries)
	return nil
}

// forwardScratch is what forwardData reuses from message to message.
type forwardScratch struct {
	table   []envelope.MultiTopic
	entries []forwardEntry
	tss     []*topicState
}

// forwardEntry is one topic of a message forwarded whole.
type forwardEntry struct {
	topic string
	first uint64
	n     int
	ts    *topicState
}

// read fills f.entries with m's topics, checking that m can go out whole:
// no record above maxPayload, and for MULTI at least two topics, each
// named once and with records (what a MULTI built by a BatchBuilder is).
func (f *forwardScratch) read(m *envelope.Message, maxPayload int) error {
	f.entries = f.entries[:0]
	if m.Kind == envelope.KindData {
		for _, payload := range m.Records() {
			if len(payload) > maxPayload {
				return fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), maxPayload)
			}
		}
		f.entries = append(f.entries, forwardEntry{topic: string(m.Topic), first: m.Seq, n: int(m.Count)})
		return nil
	}
	f.table = m.MultiTopics(f.table[:0])
	for _, t := range f.table {
		f.entries = append(f.entries, forwardEntry{topic: string(t.Topic), first: t.First})
	}
	clear(f.table)
	for e, payload := range m.MultiRecords() {
		if len(payload) > maxPayload {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), maxPayload)
		}
		f.entries[e].n++
	}
	if len(f.entries) < 2 {
		return fmt.Errorf("%w: a MULTI of one topic", ErrNotWhole)
	}
	for i, e := range f.entries {
		if e.n == 0 {
			return fmt.Errorf("%w: MULTI topic %q without records", ErrNotWhole, e.topic)
		}
		for _, o := range f.entries[:i] {
			if o.topic == e.topic {
				return fmt.Errorf("%w: MULTI names %q twice", ErrNotWhole, e.topic)
			}
		}
	}
	return nil
}

// Skip makes through the last sequence of topic without publishing the
// sequences above the current last one: heartbeats and END name through,
// so subscribers see the skipped tail as a gap. A relay uses it when its
// upstream reported the tail of a topic lost. through at or below the
// last sequence returns ErrSequence; a publisher with DataDir returns
// ErrSkipJournal.
func (p *Publisher) Skip(topic string, through uint64) error {
	var err error
	p.locked(func(c *pubCore) { err = c.skip(topic, through) })
	if err == nil {
		signal(p.wake)
	}
	return err
}

// publishSeq is publish with the sequence chosen by the caller.
func (c *pubCore) publishSeq(topic string, seq uint64, payload []byte) error {
	if ts := c.topics[topic]; ts != nil && seq <= ts.seq {
		return fmt.Errorf("%w: %q seq %d, last %d", ErrSequence, topic, seq, ts.seq)
	}
	if c.phase != phasePublishing || c.pending >= c.cfg.MaxPending || len(payload) > c.cfg.MaxPayload ||
		(c.cfg.QuorumLost == LostPause && c.q.lost()) {
		_, err := c.publish(topic, payload) // refuses, or says what to wait for
		return err
	}
	if ts := c.topics[topic]; seq > 1 && (ts == nil || seq-1 > ts.seq) {
		if err := c.skip(topic, seq-1); err != nil {
			return err
		}
	}
	_, err := c.publish(topic, payload) // seq: the skip left the topic at seq-1
	return err
}

// skip moves topic's last sequence to through. The open batch is sealed
// first: a batch holds consecutive sequences of each topic. The tables
// name through once everything accepted before the skip was taken (take
// applies it, or end).
func (c *pubCore) skip(topic string, through uint64) error {
	switch c.phase {
	case phaseProbing:
		return errWaitQuorum
	case phaseFailed:
		return c.failure
	case phaseEnding, phaseEnded:
		return ErrClosed
	}
	ts := c.topics[topic]
	var last uint64
	if ts != nil {
		last = ts.seq
	}
	if through <= last {
		return fmt.Errorf("%w: %q skip to %d, last %d", ErrSequence, topic, through, last)
	}
	if c.cfg.DataDir != "" {
		return fmt.Errorf("%w: %q from %d to %d", ErrSkipJournal, topic, last+1, through)
	}
	if ts == nil {
		var err error
		if ts, err = c.addTopic(topic); err != nil {
			return err
		}
	}
	if c.open != nil {
		c.sealed = append(c.sealed, c.open)
		c.open = nil
	}
	ts.seq = through
	c.skips = append(c.skips, skipTo{ts, through})
	return nil
}

// skipTo is a skip not yet visible in the tables.
type skipTo struct {
	ts      *topicState
	through uint64
}

// applySkips makes the skips visible in the tables: called once every
// batch accepted before them was taken.
func (c *pubCore) applySkips() {
	for _, s := range c.skips {
		s.ts.taken = max(s.ts.taken, s.through)
	}
	clear(c.skips)
	c.skips = c.skips[:0]
}

// PublishLoss tells subscribers that sequences from..to of topic will
// never be published, and why: the relay of a stream whose upstream
// reported them lost. from must be above the topic's last sequence. It skips
// them (as Skip) and sends a LOSS message (docs/protocol.md 1.6) in
// publish order, before any later record of the topic, so a subscriber
// reports the range lost with cause, not as a gap of its own. It blocks
// and fails as Publish does.
func (p *Publisher) PublishLoss(ctx context.Context, topic string, from, to uint64, cause recovery.Cause) error {
	l := envelope.Loss{Topic: topic, From: from, To: to, Cause: cause.String()}
	if _, err := envelope.ParseLoss(envelope.AppendLoss(nil, l)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadTopic, err)
	}
	for {
		p.mu.Lock()
		err := p.core.publishLoss(l)
		changed := p.changed
		p.mu.Unlock()
		switch err {
		case nil:
			signal(p.wake)
			return nil
		case errWaitQuorum, errPaused:
		default:
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publishLoss skips l's range and queues its LOSS message before the
// next batch begun.
func (c *pubCore) publishLoss(l envelope.Loss) error {
	if c.phase == phasePublishing && c.cfg.QuorumLost == LostPause && c.q.lost() {
		return errPaused
	}
	if ts := c.topics[l.Topic]; ts != nil && l.From <= ts.seq {
		return fmt.Errorf("%w: %q loss from %d, last %d", ErrSequence, l.Topic, l.From, ts.seq)
	}
	if err := c.skip(l.Topic, l.To); err != nil {
		return err
	}
	c.losses = append(c.losses, lossNote{before: c.batches + 1, payload: envelope.AppendLoss(nil, l)})
	return nil
}

// lossNote is a LOSS message waiting to go out before batch number
// before (a batch begun later).
type lossNote struct {
	before  uint64
	payload []byte
}

// takeLosses appends the LOSS messages queued since the last call to dst.
func (c *pubCore) takeLosses(dst []lossNote) []lossNote {
	dst = append(dst, c.losses...)
	clear(c.losses)
	c.losses = c.losses[:0]
	return dst
}

// sendLosses sends the queued LOSS messages that go before batch gen
// (all of them for gen 0) and keeps the rest.
func (p *Publisher) sendLosses(ctx context.Context, gen uint64) {
	n := 0
	for _, l := range p.losses {
		if gen != 0 && l.before > gen {
			p.losses[n] = l
			n++
			continue
		}
		p.sendControl(ctx, envelope.KindLoss, l.payload)
	}
	clear(p.losses[n:])
	p.losses = p.losses[:n]
}
