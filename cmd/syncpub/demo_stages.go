package main

import (
	"fmt"

	"github.com/syncmq/syncmq/coord"
)

// The four stages of the demo. Each prints what happened, with its
// numbers, and returns why it did not behave as expected, if it did not.

// quorumGate (a): Publish blocks until the last subscriber of the quorum
// joined; then every subscriber gets the topic from sequence 1.
func (d *demo) quorumGate() error {
	fmt.Fprintf(d.out, "(a) quorum gate: nothing is published before the %s subscriber joins\n", ordinal(d.n))
	payload := []byte("Rhubarb")
	type result struct {
		seq uint64
		err error
	}
	first := make(chan result, 1)
	go func() {
		seq, err := d.pub.Publish(d.ctx, topicQuorum, payload)
		first <- result{seq, err}
	}()
	for i := 1; i <= d.n; i++ {
		cfg := coord.SubscriberConfig{Subscribe: []string{"demo."}}
		if i == d.n { // stage (b) stalls it
			cfg.Subscribe = append(cfg.Subscribe, stallMarker)
			cfg.Wire.RecvQueue = 4 // a stall backs up to the publisher at once, not after 1024 batches
		}
		s, err := d.newSub(fmt.Sprintf("sub-%d", i), cfg)
		if err != nil {
			return err
		}
		d.subs = append(d.subs, s)
		if i == d.n {
			break
		}
		st := d.pub.Stats()
		select {
		case r := <-first:
			return fmt.Errorf("the first Publish returned (seq %d, %v) with %d of %d subscribers joined", r.seq, r.err, i, d.n)
		default:
		}
		if st.Published != 0 || st.Joined != i {
			return fmt.Errorf("with %d of %d joined the publisher says %d joined and %d published", i, d.n, st.Joined, st.Published)
		}
		fmt.Fprintf(d.out, "    %d of %d joined: 0 published, Publish waiting\n", i, d.n)
	}
	var r result
	select {
	case r = <-first:
	case <-d.ctx.Done():
		return fmt.Errorf("the first Publish still waits with every subscriber joined: %w", d.ctx.Err())
	}
	if r.err != nil || r.seq != 1 {
		return fmt.Errorf("the waiting Publish returned seq %d, %v; want seq 1", r.seq, r.err)
	}
	d.published[topicQuorum] = 1
	fmt.Fprintf(d.out, "    %d of %d joined: quorum reached, the waiting Publish got seq 1\n", d.n, d.n)
	if err := d.publish(topicQuorum, d.count-1, payload); err != nil {
		return err
	}
	last := d.published[topicQuorum]
	if err := d.allHave(d.subs, topicQuorum, last); err != nil {
		return err
	}
	for _, s := range d.subs {
		if err := s.complete(topicQuorum, last); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.out, "    ok: every subscriber got %s 1-%d in order, nothing lost\n", topicQuorum, last)
	return nil
}

// stallChunk is how many messages stage (b) publishes between two
// looks at the subscribers, and stallPayload their size: 1 MiB a chunk.
const (
	stallChunk   = 256
	stallPayload = 4096
	maxStall     = demoRetention / 2 // messages sent to a stalled subscriber before giving up
)

// stallAndRepair (b): the last subscriber stops taking messages; the
// publisher, paced by the others, cuts it as a slow consumer instead of
// waiting; released, it reconnects and repairs the gap from the
// publisher's history over the recovery channel.
func (d *demo) stallAndRepair() error {
	victim := d.subs[len(d.subs)-1]
	others := d.subs[:len(d.subs)-1]
	fmt.Fprintf(d.out, "(b) stall and repair: %s stops taking messages on %s\n", victim.name, topicStall)
	victim.stallOn(topicStall)
	payload := make([]byte, stallPayload)
	before := d.pub.Stats()
	// Publish while the others keep up, until the publisher cuts the
	// stalled subscriber: the others are never a chunk behind, so the cut
	// can only be the stalled one's, and the publisher never waits for it.
	for cut := false; !cut; {
		if d.published[topicStall] >= maxStall {
			return fmt.Errorf("the publisher did not cut %s after %d messages", victim.name, d.published[topicStall])
		}
		if err := d.publish(topicStall, stallChunk, payload); err != nil {
			return err
		}
		if err := d.allHave(others, topicStall, d.published[topicStall]); err != nil {
			return err
		}
		select {
		case <-d.stallCut:
			cut = true
		default:
		}
	}
	select {
	case <-victim.stalled:
	default:
		return fmt.Errorf("%s was cut but had not stalled", victim.name)
	}
	st := d.pub.Stats()
	cutAt := d.published[topicStall]
	fmt.Fprintf(d.out, "    the publisher went on with the others and cut %s as a slow consumer after %d messages\n", victim.name, cutAt)
	close(victim.release)
	// The rest of the stage's messages, at least a chunk: the released
	// subscriber must see live messages after its gap to repair it.
	rest := max(d.count-int(cutAt), stallChunk)
	if err := d.publish(topicStall, rest, payload); err != nil {
		return err
	}
	last := d.published[topicStall]
	if err := d.allHave(d.subs, topicStall, last); err != nil {
		return err
	}
	for _, s := range d.subs {
		if err := s.complete(topicStall, last); err != nil {
			return err
		}
	}
	t, vs := victim.tally(topicStall), victim.sub.Stats()
	if t.replayed == 0 || vs.Disconnects == 0 || vs.Reconnects == 0 {
		return fmt.Errorf("%s repaired %d messages after %d disconnects, %d reconnects; want a repair after a reconnect", victim.name, t.replayed, vs.Disconnects, vs.Reconnects)
	}
	fmt.Fprintf(d.out, "    released, %s reconnected and repaired %d messages over the recovery channel (the %d batches queued for it were dropped when it was cut)\n",
		victim.name, t.replayed, st.Wire.Dropped-before.Wire.Dropped)
	if last > uint64(d.count) {
		fmt.Fprintf(d.out, "    (%d messages, not %d: the publisher cut %s only after %d, and %d more followed its release)\n", last, d.count, victim.name, cutAt, rest)
	}
	fmt.Fprintf(d.out, "    ok: every subscriber got %s 1-%d in order, nothing lost\n", topicStall, last)
	return nil
}

// lateJoiner (c): a subscriber that joins after publishing started and
// asks to start at the earliest record gets what was published before it
// joined from the publisher's history, then the live stream, without a
// hole.
func (d *demo) lateJoiner() error {
	joinAt := d.published[topicQuorum]
	fmt.Fprintf(d.out, "(c) late joiner: late-1 joins at %s seq %d and starts at the earliest record\n", topicQuorum, joinAt)
	s, err := d.newSub("late-1", coord.SubscriberConfig{Subscribe: []string{topicQuorum}, StartAt: coord.StartAtEarliest})
	if err != nil {
		return err
	}
	d.late = append(d.late, s)
	if err := d.allHave([]*demoSub{s}, topicQuorum, joinAt); err != nil {
		return err
	}
	caughtUp := s.tally(topicQuorum)
	if err := d.publish(topicQuorum, d.count, []byte("Rhubarb")); err != nil {
		return err
	}
	last := d.published[topicQuorum]
	if err := d.allHave(append([]*demoSub{s}, d.subs...), topicQuorum, last); err != nil {
		return err
	}
	if err := s.complete(topicQuorum, last); err != nil {
		return err
	}
	t := s.tally(topicQuorum)
	if caughtUp.replayed < joinAt {
		return fmt.Errorf("late-1 replayed %d messages, want the %d published before it joined", caughtUp.replayed, joinAt)
	}
	fmt.Fprintf(d.out, "    replayed %d from the publisher's history, then %d live\n", t.replayed, t.delivered-t.replayed)
	fmt.Fprintf(d.out, "    ok: late-1 got %s 1-%d in order, nothing lost\n", topicQuorum, last)
	return nil
}

// retentionExceeded (d): the publisher retains demoRetention messages
// per topic; a late joiner asking for everything gets those replayed and
// the rest reported lost, with its exact range and cause, not skipped.
func (d *demo) retentionExceeded() error {
	fmt.Fprintf(d.out, "(d) retention exceeded: the publisher keeps at least the last %d messages of each topic\n", demoRetention)
	if err := d.publish(topicRetention, demoRetention+d.count, []byte("Rhubarb")); err != nil {
		return err
	}
	last := d.published[topicRetention]
	if err := d.allHave(d.subs, topicRetention, last); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "    %d published on %s; late-2 joins and asks for all of them\n", last, topicRetention)
	s, err := d.newSub("late-2", coord.SubscriberConfig{Subscribe: []string{topicRetention}, StartAt: coord.StartAtEarliest})
	if err != nil {
		return err
	}
	d.late = append(d.late, s)
	if err := d.allHave([]*demoSub{s}, topicRetention, last); err != nil {
		return err
	}
	t := s.tally(topicRetention)
	if errs := s.orderErrors(); len(errs) > 0 {
		return fmt.Errorf("out of order: %s", errs[0])
	}
	if len(t.losses) != 1 || t.losses[0].From != 1 || t.lost == 0 || t.lost+t.delivered != last || t.replayed != t.delivered {
		return fmt.Errorf("late-2: %d replayed, %d delivered, %d lost in %d loss events; want one loss from seq 1 and the rest replayed, %d in all",
			t.replayed, t.delivered, t.lost, len(t.losses), last)
	}
	loss := t.losses[0]
	fmt.Fprintf(d.out, "    replayed %d; reported lost: %s %d-%d (%d messages, cause %s)\n", t.replayed, loss.Topic, loss.From, loss.To, t.lost, loss.Cause)
	fmt.Fprintf(d.out, "    ok: late-2 accounted for all %d: %d delivered + %d reported lost\n", last, t.delivered, t.lost)
	return nil
}

// ordinal returns "1st", "2nd", "3rd", "4th", ...
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprint(n, suffix)
}
