package coord

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"
)

// pubCore is the publisher's protocol state: sequencing and batching of
// published records, the quorum, which data connection each subscriber
// proved, and the tables heartbeats and END carry. It is a plain state
// machine in the manner of etcd raft's raft.go: inputs are method calls
// that carry the time they happened (publish, take, ready, bye, data
// connection changes, member changes, tick), outputs are return values
// and the events it queues. It starts no goroutine, takes no lock, reads
// no clock and touches no socket; the Publisher (publisher.go) owns one
// behind a single mutex and does all the I/O.
//
// Invariants the tests check:
//   - every sequence of a topic is handed out once, in order, from 1;
//   - nothing is accepted before the quorum is reached (or forced);
//   - take returns batches in the order their records were accepted, and
//     the tables heartbeats and END carry equal the last sequence taken;
//   - a subscriber counts only once it quoted the nonce of a HELLO its own
//     data connection received, one subscriber id per nonce, and before
//     the start only while that connection lives;
//   - with TLS, a READY or BYE is accepted only when its subscriber id is
//     the certificate identity of the sync connection it came on and, for
//     READY, of the data connection whose nonce it quotes, and (with an
//     allow-list) an allowed one.
type pubCore struct {
	cfg       PublisherConfig
	recovery  string // recovery endpoint the ACK names
	start     time.Time
	newBatch  func() *outMsg
	randNonce func() [envelope.NonceSize]byte

	phase   phase
	failure error // phaseFailed: the *QuorumError

	topics  map[string]*topicState
	last    *topicState   // the topic of the last publish: most publish runs of one topic
	order   []*topicState // creation order: ACK tables and heartbeat sampling
	cursor  int           // next unchanged topic a heartbeat repeats
	open    *outMsg       // the batch accepting records
	sealed  []*outMsg     // sealed batches in publish order
	batches uint64        // batches begun: the number of the open one
	pending int           // bytes accepted and not yet handed to the socket
	skips   []skipTo      // Skip calls the tables do not show yet (forward.go)
	losses  []lossNote    // LOSS messages to send in publish order (forward.go)
	fwd     forwardScratch

	// Message forms: multiConns connections are on the MULTI form,
	// dataConns others take data (a data subscription) on the DATA form.
	// classChanges lists connections whose form changed since the last
	// take, for the socket to follow before it sends what that take
	// returned.
	multiConns, dataConns int
	classChanges          []classChange

	q       quorum
	conns   map[connID]*dataConn
	byNonce map[[envelope.NonceSize]byte]*dataConn
	// subs holds every id that joined this epoch, but for those whose
	// data connection went away before the start: they are forgotten
	// (forget), so ids that join and hang up cannot keep MaxSubscribers
	// slots. perAddr counts subs by the source address of the data
	// connection each first joined on (tcp:// only: MaxSubscribersPerIP).
	subs      map[string]*subscriber
	perAddr   map[string]int
	refused   map[string]uint64 // READY and BYE refusals by code
	forgotten uint64            // ids forgotten by forget
	fullAddr  uint64            // READYs refused for MaxSubscribersPerIP

	// bindIdentity (TLS on): a subscriber id must be the identity of the
	// certificates its connections presented. allow lists the identities
	// that may join.
	bindIdentity bool
	allow        allowList

	// catchUp: the publisher feeds data connections from its history
	// (SlowCatchUp with a store), so a READY's from is granted; the
	// connections it was granted for wait in catchUps for the shell.
	catchUp  bool
	catchUps []catchUpReq

	nextHeartbeat time.Time
	beats         uint64              // heartbeats built
	final         []envelope.TopicSeq // the END table, once END was taken
	endedAt       time.Time
	events        []coreEvent
	gen           uint64 // bumped when a blocked Publish may proceed
}

// phase is where the publisher is in its life.
type phase uint8

const (
	phaseProbing    phase = iota // waiting for the quorum; nothing is published
	phasePublishing              // the quorum was reached or forced
	phaseFailed                  // the quorum timed out under policy fail
	phaseEnding                  // Shutdown: no new records; what was accepted goes out, then END
	phaseEnded                   // END was taken
)

func (p phase) String() string {
	return [...]string{"probing", "publishing", "failed", "ending", "ended"}[p]
}

// topicState is the publisher's view of one topic.
type topicState struct {
	name      string
	nameBytes []byte // name, for frames built without allocating
	seq       uint64 // last sequence accepted by publish
	taken     uint64 // last sequence taken for the socket
	reported  uint64 // taken as of the last heartbeat
	beat      uint64 // the last heartbeat that listed it
	entryGen  uint64 // the batch in which the topic has table entry entry
	entry     int
}

// dataConn is one connection to the PUB socket and the nonce its HELLOs
// carry. Quoting that nonce in a READY proves the subscriber reads this
// connection; the nonce is never sent anywhere else.
type dataConn struct {
	id         connID
	identity   string // of its client certificate; "" without TLS
	addr       string // its source address (host, without the port)
	nonce      [envelope.NonceSize]byte
	since      time.Time
	subscribed bool          // asked for the control topic: HELLOs can reach it
	helloAt    time.Time     // last HELLO handed out for it
	helloEvery time.Duration // until the next one: doubles up to HeartbeatInterval
	kicked     bool          // closed for JoinTimeout; gone once the socket reports it
	subscriber *subscriber
	// Form: accepts says its READY accepted MULTI, covers that it
	// subscribed to a prefix of every topic this publisher may publish,
	// dataSub that it subscribed to some data topics. It is on the MULTI
	// form (multi) when it accepts and covers.
	accepts, covers, dataSub, multi bool
	// catchFrom is the from its READY was granted: its data connection
	// is fed the history from there (0: not).
	catchFrom uint64
}

// catchUpReq asks the shell to feed a data connection the history of
// every topic from a sequence on, before the live stream.
type catchUpReq struct {
	conn connID
	from uint64
}

// classChange is a connection's new form.
type classChange struct {
	conn  connID
	multi bool
}

// subscriber is what the publisher remembers of one subscriber id.
type subscriber struct {
	id       string
	addr     string    // counted in perAddr under this address; "" if not counted
	conn     *dataConn // the connection its latest READY proved; nil once gone
	joinedAt time.Time
	// nonces are those its accepted READYs quoted, the latest last (at
	// most byeNonces): a BYE must quote one. Not only the latest: a BYE
	// may cross the READY of a new connection.
	nonces [][envelope.NonceSize]byte
	// firstTable is where every topic stood at its first join (a topic
	// created later stood at 0): a subscriber that comes back under the
	// same id (a restart) is told, so it repairs from there or reports
	// the difference as lost.
	firstTable map[string]uint64
	// bye: it said BYE, confirming it has everything up to END or was
	// told it lost lost records of them.
	bye  bool
	lost uint64
	// goneAt is when its last data connection went away (zero while it
	// has one): after END the publisher waits RepairWindow, from END or
	// from then if later, for it to come back.
	goneAt time.Time
	// cutSlow: that connection was cut as a slow consumer. Such a
	// subscriber is behind by the publisher's doing, and it learns of the
	// cut only once it has read what the socket had already taken, which
	// for a reader that was stalled can be megabytes and seconds: after
	// END it is waited for until the drain gives up, not RepairWindow.
	cutSlow bool
}

// coreEvent is something the Publisher logs or acts on; the core only
// queues them.
type coreEvent struct {
	kind       coreEventKind
	subscriber string
	live, need int
	joined     int
	code       string // refusals: the error code sent
	reason     string
	identity   string // refusals: the certificate identity of the requester
	conn       connID
	err        error
}

type coreEventKind uint8

const (
	evJoined        coreEventKind = iota + 1 // a subscriber's READY was accepted
	evRefused                                // a READY or BYE was refused
	evQuorumReached                          // publishing starts
	evQuorumForced                           // the quorum timed out under policy proceed
	evQuorumFailed                           // the quorum timed out under policy fail
	evQuorumLost                             // a membership quorum reached before is lost
	evQuorumRegained
	evLeftBeforeStart // a counted subscriber's data connection went away before the start
	evKick            // a data connection never completed the handshake in time
)

// connID names one connection to the PUB socket (wire.ConnID).
type connID uint64

// errors publish returns to say "wait for the next change and retry".
var (
	errWaitQuorum = errors.New("coord: waiting for the quorum")
	errWaitSpace  = errors.New("coord: MaxPending bytes queued")
	errPaused     = errors.New("coord: paused, quorum lost")
)

func newPubCore(cfg PublisherConfig, recoveryEndpoint string, now time.Time, newBatch func() *outMsg) *pubCore {
	c := &pubCore{
		cfg:       cfg,
		recovery:  recoveryEndpoint,
		start:     now,
		newBatch:  newBatch,
		randNonce: randomNonce,
		topics:    make(map[string]*topicState),
		q:         newQuorum(cfg.Quorum),
		conns:     make(map[connID]*dataConn),
		byNonce:   make(map[[envelope.NonceSize]byte]*dataConn),
		subs:      make(map[string]*subscriber),
		perAddr:   make(map[string]int),
		refused:   make(map[string]uint64),

		bindIdentity: cfg.TLS != nil,
		allow:        newAllowList(cfg.Allow),
	}
	c.nextHeartbeat = now.Add(cfg.HeartbeatInterval)
	if cfg.Quorum == (QuorumRule{Kind: QuorumStatic}) {
		c.startPublishing(now, evQuorumReached) // Expect 0: nothing to wait for
	}
	return c
}

func randomNonce() (n [envelope.NonceSize]byte) {
	_, _ = rand.Read(n[:])
	return n
}

func (c *pubCore) emit(ev coreEvent) { c.events = append(c.events, ev) }

// takeEvents returns the queued events and forgets them.
func (c *pubCore) takeEvents(dst []coreEvent) []coreEvent {
	dst = append(dst, c.events...)
	clear(c.events)
	c.events = c.events[:0]
	return dst
}

// publish accepts one record and returns its sequence. errWaitQuorum,
// errWaitSpace and errPaused mean the caller should wait for gen to change
// and try again; other errors are final.
func (c *pubCore) publish(topic string, payload []byte) (uint64, error) {
	switch c.phase {
	case phaseProbing:
		return 0, errWaitQuorum
	case phaseFailed:
		return 0, c.failure
	case phaseEnding, phaseEnded:
		return 0, ErrClosed
	}
	if c.cfg.QuorumLost == LostPause && c.q.lost() {
		return 0, errPaused
	}
	if len(payload) > c.cfg.MaxPayload {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), c.cfg.MaxPayload)
	}
	if c.pending >= c.cfg.MaxPending {
		return 0, errWaitSpace
	}
	// A run of one topic compares two strings instead of hashing one:
	// at small records the map lookup was a tenth of Publish.
	ts := c.last
	if ts == nil || ts.name != topic {
		if ts = c.topics[topic]; ts == nil {
			var err error
			if ts, err = c.addTopic(topic); err != nil {
				return 0, err
			}
		}
		c.last = ts
	}
	// A batch takes records in publish order, so every subscriber sees
	// the publisher's order across topics, as with a plain PUB. Records of
	// different topics share a batch (a MULTI) only while a connection on
	// the MULTI form is there to take it whole; otherwise a batch holds
	// consecutive records of one topic, which every subscriber can take.
	m := c.open
	if m != nil && !c.fits(m, ts, len(payload)) {
		c.sealed = append(c.sealed, m)
		m = nil
	}
	if m == nil {
		m = c.newBatch()
		c.batches++
		m.begin(c.batches, c.cfg.ID, c.cfg.Epoch)
		c.open = m
	}
	m.add(ts, payload)
	c.pending += len(payload) + 4
	ts.seq++
	return ts.seq, nil
}

// fits reports whether the open batch m takes a record of ts with n
// payload bytes.
func (c *pubCore) fits(m *outMsg, ts *topicState, n int) bool {
	if m.b.Count() >= c.cfg.MaxBatchRecords {
		return false
	}
	size := m.b.Size() + n + 4
	if m.entry(ts) < 0 {
		if c.multiConns == 0 {
			return false
		}
		size += m.index + envelope.MultiEntrySize(ts.name) + 2
	} else if m.multi() {
		size += m.index + 2
	}
	return size <= c.cfg.MaxBatchBytes
}

func (c *pubCore) addTopic(topic string) (*topicState, error) {
	if err := c.checkNewTopic(topic, 0); err != nil {
		return nil, err
	}
	ts := &topicState{name: topic, nameBytes: []byte(topic)}
	c.topics[topic] = ts
	c.order = append(c.order, ts)
	return ts, nil
}

// checkNewTopic reports whether topic may be added with others more new
// topics added before it.
func (c *pubCore) checkNewTopic(topic string, others int) error {
	if err := envelope.CheckTopic([]byte(topic), envelope.KindData, envelope.Limits{}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadTopic, err)
	}
	if err := handshake.CheckTopic(topic); err != nil {
		// The ACK names topics in JSON: other bytes would arrive altered.
		return fmt.Errorf("%w: %v", ErrBadTopic, err)
	}
	if !envelope.MatchesAny(c.cfg.Topics, topic) {
		// Subscribers found this publisher by its announced topics; one
		// outside them could reach nobody who needs it.
		return fmt.Errorf("%w: %q does not start with an announced topic %q", ErrBadTopic, topic, c.cfg.Topics)
	}
	if len(c.topics)+others >= c.cfg.MaxTopics {
		return fmt.Errorf("%w: %d topics, the limit (MaxTopics)", ErrTooManyTopics, len(c.topics)+others)
	}
	return nil
}

// take closes the open batch and appends every batch to dst, in publish
// order. From here on their records count as sent: tables (ACK,
// heartbeat, END) include them. The caller finishes the batches (outMsg.
// finish stamps the time and checksums, outside the Publisher's lock),
// hands them to the socket before any table it takes later, and reports
// their bytes with sent.
func (c *pubCore) take(dst []*outMsg) []*outMsg {
	if c.open != nil {
		c.sealed = append(c.sealed, c.open)
		c.open = nil
	}
	for _, m := range c.sealed {
		for i, ts := range m.topics {
			_, first, n := m.b.Topic(i)
			ts.taken = first + uint64(n) - 1
		}
		m.toData = c.dataConns > 0
		dst = append(dst, m)
	}
	clear(c.sealed)
	c.sealed = c.sealed[:0]
	c.applySkips()
	return dst
}

// takeCatchUps appends the data connections granted a catch-up since the
// last call to dst.
func (c *pubCore) takeCatchUps(dst []catchUpReq) []catchUpReq {
	dst = append(dst, c.catchUps...)
	c.catchUps = c.catchUps[:0]
	return dst
}

// takeClassChanges appends the connections whose form changed since the
// last call to dst. The caller applies them to the socket after the take
// that preceded this call and before sending what it returned: batches
// taken before a change went out in the old form, those after in the new.
func (c *pubCore) takeClassChanges(dst []classChange) []classChange {
	dst = append(dst, c.classChanges...)
	clear(c.classChanges)
	c.classChanges = c.classChanges[:0]
	return dst
}

// setForm updates dc's form flags and the connection counts, and queues a
// class change when its form changed.
func (c *pubCore) setForm(dc *dataConn, accepts, covers, dataSub bool) {
	if dc.dataSub && !dc.multi {
		c.dataConns--
	}
	if dc.multi {
		c.multiConns--
	}
	was := dc.multi
	dc.accepts, dc.covers, dc.dataSub = accepts, covers, dataSub
	dc.multi = accepts && covers
	if dc.multi {
		c.multiConns++
	} else if dc.dataSub {
		c.dataConns++
	}
	if dc.multi != was {
		c.classChanges = append(c.classChanges, classChange{dc.id, dc.multi})
	}
}

// heldBack reports that the store could not keep batches (in publish
// order, after every batch it kept): they were not sent, so no table may
// name them yet. A subscriber told of them by an ACK would ask the
// recovery endpoint for records it does not hold and take the answer as
// a loss. Each topic's taken falls back to the sequence before its first
// held-back record; retaken moves it on again once they are kept.
func (c *pubCore) heldBack(batches []*outMsg) {
	for j := len(batches) - 1; j >= 0; j-- { // the earliest batch of a topic decides
		m := batches[j]
		for i, ts := range m.topics {
			_, first, _ := m.b.Topic(i)
			ts.taken = min(ts.taken, first-1)
		}
	}
}

// retaken reports that batches held back before were kept and are about
// to be sent: tables name them again.
func (c *pubCore) retaken(batches []*outMsg) {
	for _, m := range batches {
		for i, ts := range m.topics {
			_, first, n := m.b.Topic(i)
			ts.taken = max(ts.taken, first+uint64(n)-1)
		}
	}
}

// coversAll reports whether prefix matches every topic this publisher
// may publish: it is a prefix of every announced topic prefix, or empty.
func (c *pubCore) coversAll(prefix []byte) bool { return coversTopics(c.cfg.Topics, prefix) }

// sent reports that n bytes of taken batches are with the socket, so
// Publish calls waiting for room may proceed.
func (c *pubCore) sent(n int) {
	full := c.pending >= c.cfg.MaxPending
	c.pending -= n
	if full && c.pending < c.cfg.MaxPending {
		c.gen++
	}
}

// dataConnected registers a new connection to the PUB socket, with the
// identity of its client certificate ("" without TLS) and its source
// address (host without port; "" if unknown).
func (c *pubCore) dataConnected(id connID, identity, addr string, now time.Time) {
	dc := &dataConn{id: id, identity: identity, addr: addr, since: now, nonce: c.randNonce()}
	for c.byNonce[dc.nonce] != nil { // 2^-128, but a map must not collide
		dc.nonce = c.randNonce()
	}
	c.conns[id] = dc
	c.byNonce[dc.nonce] = dc
}

// dataSubscribed reports a subscription of a connection. Once it covers
// the control topic, HELLOs reach it: the first is due at once. It returns
// the nonce to send in a HELLO to that connection now, if any.
func (c *pubCore) dataSubscribed(id connID, prefix []byte, now time.Time) ([envelope.NonceSize]byte, bool) {
	dc := c.conns[id]
	if dc == nil {
		return [envelope.NonceSize]byte{}, false
	}
	// Data topics never start with a zero byte: only a prefix that does
	// not either (or the empty one) can match them.
	if dataSub := len(prefix) == 0 || prefix[0] != 0; dataSub {
		c.setForm(dc, dc.accepts, dc.covers || c.coversAll(prefix), true)
	}
	if dc.subscribed || len(prefix) > len(envelope.ControlTopic) || envelope.ControlTopic[:len(prefix)] != string(prefix) {
		return [envelope.NonceSize]byte{}, false
	}
	dc.subscribed = true
	// Also after END: a subscriber that lost its connection (cut as slow,
	// or restarted) proves the new one, rejoins, and learns from the END
	// it is sent next (endDue) what it still has to repair.
	dc.helloAt, dc.helloEvery = now, c.cfg.HelloInterval
	return dc.nonce, true
}

// dataSlow notes that a connection is being cut as a slow consumer (its
// dataGone follows).
func (c *pubCore) dataSlow(id connID) {
	if dc := c.conns[id]; dc != nil && dc.subscriber != nil && dc.subscriber.conn == dc {
		dc.subscriber.cutSlow = true
	}
}

// dataGone forgets a connection. A subscriber it proved stops counting if
// publishing has not started yet, and is forgotten: it gives up its
// MaxSubscribers slot, and comes back, if it does, as a new id. Before
// the start nothing was published, so there is nothing it could resume.
func (c *pubCore) dataGone(id connID, now time.Time) {
	dc := c.conns[id]
	if dc == nil {
		return
	}
	delete(c.conns, id)
	delete(c.byNonce, dc.nonce)
	c.setForm(dc, false, false, false)
	s := dc.subscriber
	if s == nil || s.conn != dc {
		return
	}
	s.conn, s.goneAt = nil, now
	if c.phase >= phaseEnding {
		c.gen++ // the end waits for it to come back, for a while
	}
	if c.phase != phaseProbing {
		return
	}
	c.forget(s)
	if !c.cfg.Quorum.membership() {
		c.applyQuorum(c.q.drop(s.id, now), now)
		c.emit(coreEvent{kind: evLeftBeforeStart, subscriber: s.id, live: c.q.live(), need: c.q.need()})
	}
}

// forget drops subscriber s, freeing its MaxSubscribers and
// MaxSubscribersPerIP slots.
func (c *pubCore) forget(s *subscriber) {
	delete(c.subs, s.id)
	if s.addr != "" {
		if c.perAddr[s.addr]--; c.perAddr[s.addr] <= 0 {
			delete(c.perAddr, s.addr)
		}
	}
	c.forgotten++
}

// checkIdentity refuses a READY or BYE whose subscriber id is not the
// identity of the sync connection it came on, or not allowed. Only with
// TLS: without it, connections have no identity.
func (c *pubCore) checkIdentity(r handshake.Ready, identity string) (handshake.ErrorReply, bool) {
	switch {
	case !c.bindIdentity:
		return handshake.ErrorReply{}, true
	case r.Subscriber != identity:
		return c.refuseIdentity(identity, fmt.Sprintf("subscriber id %q is not the identity of this connection's certificate, %q", r.Subscriber, identity)), false
	case !c.allow.allows(identity):
		return c.refuseIdentity(identity, fmt.Sprintf("%q is not on the publisher's allow-list", identity)), false
	}
	return handshake.ErrorReply{}, true
}

// ready answers a READY that came on a sync connection whose certificate
// names identity ("" without TLS): an Ack, or an ErrorReply for the
// subscriber.
func (c *pubCore) ready(r handshake.Ready, identity string, now time.Time) any {
	if e, ok := c.checkIdentity(r, identity); !ok {
		return e
	}
	if !c.isMe(r) {
		return c.refuse(handshake.CodeWrongPublisher, fmt.Sprintf("this is publisher %s epoch %d", c.cfg.ID, c.cfg.Epoch))
	}
	// After END, READY is still answered while the publisher serves: a
	// subscriber that joined before comes back on a new connection to
	// finish its repairs, and one that was reconnecting when END went
	// out joins to learn where the epoch ended. Either is then waited for.
	var nonce [envelope.NonceSize]byte
	if _, err := hex.Decode(nonce[:], []byte(r.Nonce)); err != nil { // DecodeReady checked the length
		return c.refuse(handshake.CodeMalformed, "nonce is not hex")
	}
	dc := c.byNonce[nonce]
	switch {
	case dc == nil:
		return c.refuse(handshake.CodeBadNonce, "nonce is not from a HELLO on a live data connection; wait for the next HELLO")
	case dc.subscriber != nil && dc.subscriber.id != r.Subscriber:
		return c.refuse(handshake.CodeBadNonce, "nonce already proved another subscriber's data connection")
	case c.bindIdentity && dc.identity != r.Subscriber:
		return c.refuseIdentity(identity, "the nonce is of a data connection whose certificate names another identity")
	}
	s := c.subs[r.Subscriber]
	// A known id is told where it first joined, in case it lost its
	// place: on another data connection it reconnected or restarted; on
	// the same one the ACK to its first READY may have been lost, and
	// what was published since counts as after its join.
	rejoin := s != nil
	if s == nil {
		if len(c.subs) >= c.cfg.MaxSubscribers {
			return c.refuse(handshake.CodeFull, fmt.Sprintf("%d subscribers, the limit", len(c.subs)))
		}
		// On tcp:// an id is a name anyone may pick: one address may hold
		// only so many. With TLS the certificate is the id.
		addr := ""
		if !c.bindIdentity && dc.addr != "" {
			addr = dc.addr
			if n := c.perAddr[addr]; n >= c.cfg.MaxSubscribersPerIP {
				c.fullAddr++
				return c.refuse(handshake.CodeFull, fmt.Sprintf("%d subscribers from this address, the limit", n))
			}
			c.perAddr[addr]++
		}
		s = &subscriber{id: r.Subscriber, addr: addr, joinedAt: now, firstTable: make(map[string]uint64)}
		for _, t := range c.table(r.Topics) {
			s.firstTable[t.Topic] = t.Seq
		}
		c.subs[r.Subscriber] = s
	}
	if s.conn != nil && s.conn != dc {
		s.conn.subscriber = nil // the old connection no longer proves anyone
	}
	s.conn, s.goneAt, s.cutSlow, dc.subscriber = dc, time.Time{}, false, s
	if !slices.Contains(s.nonces, nonce) {
		if len(s.nonces) == byeNonces {
			s.nonces = slices.Delete(s.nonces, 0, 1)
		}
		s.nonces = append(s.nonces, nonce)
	}
	c.setForm(dc, r.Accepts(handshake.FormMulti), dc.covers, dc.dataSub)
	first, ch := c.q.join(s.id, now)
	ack := handshake.Ack{
		V: handshake.Version, Type: handshake.TypeAck, Publisher: c.cfg.ID.String(), Epoch: c.cfg.Epoch,
		Recovery: c.recovery, Topics: c.table(r.Topics),
	}
	if c.recovery != "" {
		ack.RepairWindowMS = c.cfg.RepairWindow.Milliseconds()
	}
	if dc.multi {
		ack.Forms = []string{handshake.FormMulti}
	}
	if r.From > 0 && c.catchUp && dc.catchFrom == 0 {
		dc.catchFrom = r.From
		c.catchUps = append(c.catchUps, catchUpReq{conn: dc.id, from: r.From})
	}
	if dc.catchFrom > 0 {
		ack.From = dc.catchFrom
	}
	if rejoin {
		ack.Resume = make([]handshake.TopicSeq, len(ack.Topics))
		for i, t := range ack.Topics {
			ack.Resume[i] = handshake.TopicSeq{Topic: t.Topic, Seq: s.firstTable[t.Topic]}
		}
	}
	c.applyQuorum(ch, now)
	ack.Joined, ack.Expect, ack.Quorum = len(c.q.counted), c.q.need(), c.q.reached()
	if first {
		c.emit(coreEvent{kind: evJoined, subscriber: s.id, joined: len(c.q.counted), live: c.q.live(), need: c.q.need()})
	}
	return ack
}

// bye answers a BYE that came on a sync connection whose certificate
// names identity ("" without TLS): the subscriber has everything up to
// END. Only the subscriber that proved a data connection may say it, by
// quoting the same nonce (and with TLS, on a connection of its own
// identity), so nobody can say bye for another.
//
// A BYE is accepted at any time, also before END; it changes nothing but
// the end: once END went out and every subscriber that joined said bye,
// the recovery endpoint closes without waiting out RepairWindow. The
// subscriber keeps counting toward the quorum and keeps receiving.
func (c *pubCore) bye(r handshake.Ready, identity string) any {
	if e, ok := c.checkIdentity(r, identity); !ok {
		return e
	}
	if !c.isMe(r) {
		return c.refuse(handshake.CodeWrongPublisher, fmt.Sprintf("this is publisher %s epoch %d", c.cfg.ID, c.cfg.Epoch))
	}
	s := c.subs[r.Subscriber]
	var nonce [envelope.NonceSize]byte
	if _, err := hex.Decode(nonce[:], []byte(r.Nonce)); err != nil || s == nil || !slices.Contains(s.nonces, nonce) { // DecodeReady checked the length
		return c.refuse(handshake.CodeBadNonce, "bye must come from a subscriber that joined this epoch and quote the nonce of its last accepted READY")
	}
	if !s.bye || s.lost != r.Lost {
		s.bye, s.lost = true, r.Lost
		c.gen++ // the end may be waiting for this
	}
	return handshake.ByeReply()
}

// byeNonces bounds the nonces remembered per subscriber for its BYE.
const byeNonces = 4

// isMe reports whether a READY or BYE names this publisher and epoch.
// Hex digits may be of either case.
func (c *pubCore) isMe(r handshake.Ready) bool {
	id, err := envelope.ParseID(r.Publisher)
	return err == nil && id == c.cfg.ID && r.Epoch == c.cfg.Epoch
}

func (c *pubCore) refuse(code, msg string) handshake.ErrorReply {
	c.refused[code]++
	c.emit(coreEvent{kind: evRefused, code: code, reason: msg})
	return handshake.NewErrorReply(code, msg)
}

// refuseIdentity refuses a request for the identity of its certificate:
// CodeForbidden, logged with the identity.
func (c *pubCore) refuseIdentity(identity, msg string) handshake.ErrorReply {
	c.refused[handshake.CodeForbidden]++
	c.emit(coreEvent{kind: evRefused, code: handshake.CodeForbidden, reason: msg, identity: identity})
	return handshake.NewErrorReply(handshake.CodeForbidden, msg)
}

// table lists the last sequence taken on every topic that one of prefixes
// matches (all topics for none), in creation order.
func (c *pubCore) table(prefixes []string) []handshake.TopicSeq {
	t := []handshake.TopicSeq{} // [] not null, for simple clients
	for _, ts := range c.order {
		if envelope.MatchesAny(prefixes, ts.name) {
			t = append(t, handshake.TopicSeq{Topic: ts.name, Seq: ts.taken})
		}
	}
	return t
}

// setMembers replaces the live matching subscriber members (membership
// rules) and returns the ids that stopped being members.
func (c *pubCore) setMembers(ids map[string]struct{}, now time.Time) []string {
	gone, ch := c.q.setMembers(ids, now)
	c.applyQuorum(ch, now)
	return gone
}

// applyQuorum acts on a quorum change.
func (c *pubCore) applyQuorum(ch quorumChange, now time.Time) {
	ev := coreEvent{live: c.q.live(), need: c.q.need()}
	switch ch {
	case quorumReached:
		if c.phase == phaseProbing {
			c.startPublishing(now, evQuorumReached)
		}
		return
	case quorumLost:
		ev.kind = evQuorumLost
	case quorumRegained:
		ev.kind = evQuorumRegained
	default:
		return
	}
	c.gen++ // Publish under LostPause waits on this
	c.emit(ev)
}

func (c *pubCore) startPublishing(now time.Time, kind coreEventKind) {
	if kind == evQuorumForced {
		c.q.force(now)
	}
	c.phase = phasePublishing
	c.gen++
	c.emit(coreEvent{kind: kind, live: c.q.live(), need: c.q.need()})
}

// tickResult is what is due at a tick.
type tickResult struct {
	// hellos are the connections a HELLO is due to, with their nonces.
	hellos []helloDue
	// heartbeat is the table of a HEARTBEAT due now; nil when none is due.
	heartbeat []envelope.TopicSeq
	// kick lists data connections that never proved a subscriber within
	// JoinTimeout.
	kick []connID
}

type helloDue struct {
	conn  connID
	nonce [envelope.NonceSize]byte
}

// tick advances time: the settle time and quorum timeout, HELLOs to
// connections that have not joined, heartbeats, and the join timeout.
func (c *pubCore) tick(now time.Time, res *tickResult) {
	res.hellos, res.heartbeat, res.kick = res.hellos[:0], nil, res.kick[:0]
	if c.phase == phaseProbing {
		if c.cfg.Quorum.membership() && !c.q.settled && !now.Before(c.start.Add(c.cfg.Settle)) {
			c.applyQuorum(c.q.settle(now), now)
		}
		if c.phase == phaseProbing && c.cfg.QuorumTimeout > 0 && !now.Before(c.start.Add(c.cfg.QuorumTimeout)) {
			c.quorumTimeout(now)
		}
	}
	if c.phase == phaseEnding {
		return // END goes out next
	}
	for _, dc := range c.conns {
		if dc.subscriber != nil || dc.kicked {
			continue
		}
		if c.cfg.JoinTimeout > 0 && !now.Before(dc.since.Add(c.cfg.JoinTimeout)) {
			dc.kicked = true
			res.kick = append(res.kick, dc.id)
			c.emit(coreEvent{kind: evKick, conn: dc.id})
			continue
		}
		// Repeated, less and less often, in case the first was missed: a
		// subscriber whose READY failed retries on its own with the same
		// nonce, but a simple client may wait for another HELLO.
		if dc.subscribed && !now.Before(dc.helloAt.Add(dc.helloEvery)) {
			dc.helloAt = now
			dc.helloEvery = min(2*dc.helloEvery, max(c.cfg.HeartbeatInterval, c.cfg.HelloInterval))
			res.hellos = append(res.hellos, helloDue{dc.id, dc.nonce})
		}
	}
	// The connections came out of a map: put them in a fixed order.
	slices.SortFunc(res.hellos, func(a, b helloDue) int { return cmp.Compare(a.conn, b.conn) })
	slices.Sort(res.kick)
	if c.phase != phaseEnded && !now.Before(c.nextHeartbeat) {
		c.nextHeartbeat = now.Add(c.cfg.HeartbeatInterval)
		res.heartbeat = c.heartbeatTable()
	}
}

// nextDeadline is when tick has something to do next, at the latest.
func (c *pubCore) nextDeadline() time.Time {
	next := c.nextHeartbeat
	switch c.phase {
	case phaseEnded:
		next = c.endedAt.Add(time.Hour) // no heartbeats after END; HELLOs below
	case phaseEnding:
		return next.Add(time.Hour) // END goes out next; nothing to tick
	}
	if c.phase == phaseProbing {
		if c.cfg.Quorum.membership() && !c.q.settled {
			next = earliest(next, c.start.Add(c.cfg.Settle))
		}
		if c.cfg.QuorumTimeout > 0 {
			next = earliest(next, c.start.Add(c.cfg.QuorumTimeout))
		}
	}
	for _, dc := range c.conns {
		if dc.subscriber != nil || dc.kicked {
			continue
		}
		if c.cfg.JoinTimeout > 0 {
			next = earliest(next, dc.since.Add(c.cfg.JoinTimeout))
		}
		if dc.subscribed {
			next = earliest(next, dc.helloAt.Add(dc.helloEvery))
		}
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (c *pubCore) quorumTimeout(now time.Time) {
	if c.cfg.QuorumPolicy == QuorumProceed {
		c.startPublishing(now, evQuorumForced)
		return
	}
	c.phase = phaseFailed
	c.failure = &QuorumError{Joined: c.q.live(), Expect: c.q.need()}
	c.gen++
	c.emit(coreEvent{kind: evQuorumFailed, live: c.q.live(), need: c.q.need(), err: c.failure})
}

// heartbeatTopics bounds the unchanged topics a heartbeat repeats.
const heartbeatTopics = 1024

// heartbeatTable lists every topic taken since the last heartbeat plus up
// to heartbeatTopics unchanged ones, taken round-robin so every topic is
// repeated within len(topics)/heartbeatTopics heartbeats. Repeating
// unchanged topics matters: a subscriber that was disconnected when a
// burst ended learns of its lost tail only from a later heartbeat.
func (c *pubCore) heartbeatTable() []envelope.TopicSeq {
	c.beats++
	t := []envelope.TopicSeq{}
	for _, ts := range c.order {
		if ts.taken != ts.reported {
			t = append(t, envelope.TopicSeq{Topic: ts.name, Seq: ts.taken})
			ts.reported, ts.beat = ts.taken, c.beats
		}
	}
	for n, i := 0, 0; n < heartbeatTopics && i < len(c.order); i++ {
		c.cursor %= len(c.order)
		ts := c.order[c.cursor]
		c.cursor++
		if ts.beat != c.beats && ts.taken > 0 {
			t = append(t, envelope.TopicSeq{Topic: ts.name, Seq: ts.taken})
			ts.beat = c.beats
			n++
		}
	}
	return t
}

// endIfDone takes END once Shutdown began and every batch was taken:
// see end. ok is false (nothing changed) before that.
func (c *pubCore) endIfDone(now time.Time) (table []envelope.TopicSeq, failure error, ok bool) {
	if c.phase != phaseEnding || c.open != nil || len(c.sealed) > 0 {
		return nil, nil, false
	}
	table, failure = c.end(now)
	return table, failure, true
}

// shutdown stops accepting records; what was accepted is still taken, then
// END. It reports whether this call changed the phase.
func (c *pubCore) shutdown() bool {
	if c.phase >= phaseEnding {
		return false
	}
	if c.phase != phaseFailed {
		c.failure = nil
	}
	c.phase = phaseEnding
	c.gen++
	return true
}

// end seals the epoch: it returns the END table (the last sequence taken
// on every topic) after the caller took the remaining batches, and
// whether the publisher gave up (the quorum failed).
func (c *pubCore) end(now time.Time) ([]envelope.TopicSeq, error) {
	c.phase = phaseEnded
	c.endedAt = now
	c.applySkips()
	t := make([]envelope.TopicSeq, 0, len(c.order))
	for _, ts := range c.order {
		t = append(t, envelope.TopicSeq{Topic: ts.name, Seq: ts.taken})
	}
	c.final = t
	c.gen++
	return t, c.failure
}

// endDue reports whether a connection that proved nothing yet must be
// sent END with its HELLO: END went out before it connected.
func (c *pubCore) endDue() bool { return c.phase == phaseEnded }

// joinedConn reports whether a data connection proves a subscriber that
// has not said bye: the end of a job waits for those to take everything,
// and for nobody else.
func (c *pubCore) joinedConn(id connID) bool {
	dc := c.conns[id]
	return dc != nil && dc.subscriber != nil
}

// endState is where the end of the job stands at now: after END the
// publisher waits for every subscriber that joined to say BYE. A
// subscriber that has no data connection is waited for RepairWindow (from
// END, or from when its connection went away if later), then given up;
// one whose connection was cut as a slow consumer is waited for as long
// as the drain lasts (subscriber.cutSlow).
type endState struct {
	settled bool      // nothing more to wait for
	next    time.Time // when to look again at the latest, if not settled
	// waiting lists the subscribers that did not say BYE (not settled:
	// those still waited for; settled: those given up), lossy those that
	// said BYE and reported losses, both sorted.
	waiting []string
	lossy   map[string]uint64
}

// end reports where the end of the job stands; it is settled at once
// before END was taken only if nobody joined, and not before
// LingerAfterEnd passed since END.
func (c *pubCore) endState(now time.Time) endState {
	var st endState
	settled := c.phase == phaseEnded
	for id, s := range c.subs {
		switch {
		case s.bye && s.lost > 0:
			if st.lossy == nil {
				st.lossy = make(map[string]uint64)
			}
			st.lossy[id] = s.lost
		case s.bye:
		default:
			st.waiting = append(st.waiting, id)
			if s.conn != nil || c.phase != phaseEnded || s.cutSlow {
				settled = false
				continue
			}
			deadline := c.endedAt
			if s.goneAt.After(deadline) {
				deadline = s.goneAt
			}
			if deadline = deadline.Add(c.cfg.RepairWindow); now.Before(deadline) {
				settled = false
				st.next = earliestSet(st.next, deadline)
			}
		}
	}
	if settled && c.cfg.LingerAfterEnd > 0 {
		// Serving on for late joiners, whoever is waited for.
		if until := c.endedAt.Add(c.cfg.LingerAfterEnd); now.Before(until) {
			settled = false
			st.next = earliestSet(st.next, until)
		}
	}
	slices.Sort(st.waiting)
	st.settled = settled
	return st
}

// earliestSet is earliest, with the zero time meaning "not set".
func earliestSet(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return earliest(a, b)
}
