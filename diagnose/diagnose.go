package diagnose

import (
	"fmt"
	"sort"
	"strings"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/recovery"
)

// Evidence is what a running system knows about its missing messages.
// Every field is a plain value the caller fills from configuration,
// counters and events; zero values mean "none seen".
type Evidence struct {
	// Subscriptions are the SUB socket's subscription prefixes.
	Subscriptions []string
	// TopicsPublished are the topics the publisher published on (e.g. from
	// its heartbeat tables).
	TopicsPublished []string
	// JoinedAfterPublishStart says the subscriber connected after the
	// publisher had started publishing, and MessagesBeforeJoin how many
	// messages it had published by then.
	JoinedAfterPublishStart bool
	MessagesBeforeJoin      uint64
	// HandshakeErrors counts errors on the REQ/REP synchronisation handshake.
	HandshakeErrors int
	// GapsWhileConnected counts gaps detected while the SUB socket stayed connected.
	GapsWhileConnected uint64
	// SlowConsumerDisconnects counts times the publisher dropped this
	// subscriber for falling behind.
	SlowConsumerDisconnects uint64
	// PublisherQueueDrops counts messages the publisher's send queue dropped.
	PublisherQueueDrops uint64
	// Reconnects counts transport reconnects; PublisherRestarts counts new
	// publisher epochs seen.
	Reconnects        int
	PublisherRestarts int
	// LostMessages and RecoveredMessages are the sums of StreamStats.Lost
	// and StreamStats.Recovered.
	LostMessages      uint64
	RecoveredMessages uint64
	// LostByCause optionally breaks LostMessages down by the Cause of each
	// Loss. When it is nil, a symptom that coincides with losses is blamed
	// for them; when set, only causes it names are.
	LostByCause map[recovery.Cause]uint64
	// UnknownTails counts, by Cause, streams whose end was lost without
	// its length being knowable: the publisher restarted or went silent
	// before END, so what it published after the last message received
	// cannot be counted.
	UnknownTails map[recovery.Cause]int
	// SocketsSharedBetweenGoroutines says a ZeroMQ socket is used from more
	// than one goroutine. It is always false for sockets the syncmq library
	// owns: each is created, used and closed by the one goroutine running
	// its loop, and other goroutines talk to that loop over channels. It
	// can only be true for sockets application code manages itself.
	SocketsSharedBetweenGoroutines bool
	// Received counts messages delivered to the application.
	Received uint64
	// Checked says the caller knows whether the subscriber joined: without
	// it the join node is not applicable (for callers that only have
	// counters). Joined says the sync handshake with a publisher completed.
	Checked, Joined bool
	// StartedAtJoin says the subscriber deliberately began at its join
	// (coord.StartAtJoin), so MessagesBeforeJoin were skipped, not fetched.
	StartedAtJoin bool
}

// Result is the outcome of one flowchart node.
type Result uint8

// Results. Pass means the node's question found no problem, Fail that it
// found one, NotApplicable that it does not apply to this system.
const (
	Pass Result = iota + 1
	Fail
	NotApplicable
)

// String returns pass, fail, n/a or Result(n).
func (r Result) String() string {
	switch r {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case NotApplicable:
		return "n/a"
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// Mark returns ✔, ✘ or – for Pass, Fail and NotApplicable.
func (r Result) Mark() string {
	switch r {
	case Pass:
		return "✔"
	case Fail:
		return "✘"
	}
	return "–"
}

// Verdict is the outcome of one node of the flowchart.
type Verdict struct {
	// Step is the flowchart question.
	Step   string
	Result Result
	// Evidence says what in the Evidence led to Result.
	Evidence string
	// Remedy says what to do; set when Result is Fail.
	Remedy string
	// Cause names the problem when Result is Fail: a Cause name where one
	// fits, else a short slug such as "no-subscription".
	Cause string
}

// Report is the walk of the flowchart against some Evidence.
type Report struct {
	// Nodes are every node's verdict, in flowchart order.
	Nodes []Verdict
	// Cause and Fix summarise the first failing node; both are empty when
	// no node failed.
	Cause string
	Fix   string
}

// OK reports whether no node failed.
func (r Report) OK() bool { return r.Cause == "" }

// Failed returns the failing nodes, in flowchart order.
func (r Report) Failed() []Verdict {
	var f []Verdict
	for _, n := range r.Nodes {
		if n.Result == Fail {
			f = append(f, n)
		}
	}
	return f
}

// String renders the walk, one line per node with its mark and evidence,
// a "fix:" line under each failing node, and a summary.
func (r Report) String() string {
	var b strings.Builder
	b.WriteString("Missing message problem solver\n")
	for _, n := range r.Nodes {
		fmt.Fprintf(&b, "%s %s → %s\n", n.Result.Mark(), n.Step, n.Evidence)
		if n.Result == Fail && n.Remedy != "" {
			fmt.Fprintf(&b, "    fix: %s\n", n.Remedy)
		}
	}
	if r.OK() {
		b.WriteString("Cause: none found. If messages are still missing, make a minimal test case that reproduces it.\n")
	} else {
		fmt.Fprintf(&b, "Cause: %s\nFix: %s\n", r.Cause, r.Fix)
	}
	return b.String()
}

// Diagnose walks the zguide "Missing Message Problem Solver" flowchart
// (chapter 2 of the ZeroMQ guide), extended with the questions syncmq's
// recovery adds (losses while connected, reconnects, restarts, retention),
// against ev. Every node is evaluated; the first failing one becomes the
// Report's Cause and Fix. Diagnose is pure.
func Diagnose(ev Evidence) Report {
	checks := []func(Evidence) Verdict{
		checkSUB,
		checkJoined,
		checkSubscription,
		checkJoin,
		checkConnectedLoss,
		checkReconnect,
		checkRestart,
		checkGone,
		checkRecovery,
		checkReqRep,
		checkThreads,
	}
	var r Report
	for _, c := range checks {
		v := c(ev)
		r.Nodes = append(r.Nodes, v)
		if v.Result == Fail && r.Cause == "" {
			r.Cause, r.Fix = v.Cause, v.Remedy
		}
	}
	return r
}

// lost returns how many losses to blame on cause c: the LostByCause count
// when there is a breakdown, else all losses if c's symptom was seen.
func (ev Evidence) lost(c recovery.Cause, symptom bool) uint64 {
	if ev.LostByCause != nil {
		return ev.LostByCause[c]
	}
	if symptom {
		return ev.LostMessages
	}
	return 0
}

func checkSUB(ev Evidence) Verdict {
	return Verdict{
		Step:     "Do the messages arrive on a SUB socket?",
		Result:   Pass,
		Evidence: fmt.Sprintf("yes: syncmq subscribers receive on SUB sockets (%d received, %d recovered, %d lost)", ev.Received, ev.RecoveredMessages, ev.LostMessages),
	}
}

func checkSubscription(ev Evidence) Verdict {
	v := Verdict{Step: "Do you set a subscription for the messages?", Cause: "no-subscription"}
	if len(ev.Subscriptions) == 0 {
		v.Result = Fail
		v.Evidence = "no: the SUB socket has no subscription, so it receives nothing"
		v.Remedy = `subscribe to the topics wanted (a prefix matches every topic starting with it; "" matches all)`
		return v
	}
	var missing []string
	for _, t := range ev.TopicsPublished {
		if !envelope.MatchesAny(ev.Subscriptions, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		v.Result = Fail
		v.Evidence = fmt.Sprintf("no: published topic(s) %s match no subscription (subscribed: %s)", quoteList(missing), quoteList(ev.Subscriptions))
		v.Remedy = fmt.Sprintf("add subscription(s) %s, or a common prefix of them", quoteList(missing))
		return v
	}
	v.Result = Pass
	if len(ev.TopicsPublished) == 0 {
		v.Evidence = fmt.Sprintf("yes: %s (no published topics known to compare)", quoteList(ev.Subscriptions))
	} else {
		v.Evidence = fmt.Sprintf("yes: all %d published topic(s) match %s", len(ev.TopicsPublished), quoteList(ev.Subscriptions))
	}
	return v
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// checkJoined is the question the flowchart takes for granted: did the
// SUB socket ever get data? Without a completed handshake it did not.
func checkJoined(ev Evidence) Verdict {
	v := Verdict{Step: "Did the subscriber reach the publisher (HELLO on SUB, then the sync handshake)?", Cause: "not-joined"}
	switch {
	case !ev.Checked:
		v.Result, v.Evidence = NotApplicable, "not known to the caller"
	case ev.Joined:
		v.Result, v.Evidence = Pass, "yes: the handshake completed, so the data path was proven"
	default:
		v.Result = Fail
		v.Evidence = fmt.Sprintf("no: no handshake completed (%d handshake errors)", ev.HandshakeErrors)
		v.Remedy = "check that the publisher runs and that --connect/--sync name its PUB and sync endpoints (host, port, firewall); " +
			"with no HELLO on the SUB socket, the subscription or the PUB endpoint is wrong; with HELLOs but errors, the sync endpoint is"
	}
	return v
}

func checkJoin(ev Evidence) Verdict {
	v := Verdict{Step: "Do you start the SUB socket after the PUB?", Cause: recovery.CauseBeforeJoin.String()}
	var n uint64
	if ev.JoinedAfterPublishStart && ev.StartedAtJoin {
		n = ev.MessagesBeforeJoin
	}
	n = max(n, ev.LostByCause[recovery.CauseBeforeJoin])
	if n > 0 {
		v.Result = Fail
		v.Evidence = fmt.Sprintf("yes: %d message(s) were published before the subscriber joined (slow joiner)", n)
		v.Remedy = "start subscribers first and let the publisher wait for its subscriber quorum (HELLO and the sync handshake) before publishing, " +
			"or have recovery replay from the first sequence, with History retention covering the start-up"
		return v
	}
	v.Result = Pass
	if ev.JoinedAfterPublishStart && ev.MessagesBeforeJoin > 0 {
		v.Evidence = fmt.Sprintf("joined after %d message(s), and replayed them from retention", ev.MessagesBeforeJoin)
	} else if ev.JoinedAfterPublishStart {
		v.Evidence = "joined late, but nothing was published before the join"
	} else {
		v.Evidence = "no: the subscriber was connected before publishing started"
	}
	return v
}

func checkConnectedLoss(ev Evidence) Verdict {
	v := Verdict{Step: "Are you losing messages while connected (high-water mark, slow subscriber)?"}
	symptom := ev.GapsWhileConnected > 0 || ev.SlowConsumerDisconnects > 0 || ev.PublisherQueueDrops > 0
	seen := fmt.Sprintf("%d gap(s) while connected, %d slow-consumer disconnect(s), %d publisher queue drop(s)",
		ev.GapsWhileConnected, ev.SlowConsumerDisconnects, ev.PublisherQueueDrops)
	// Without a breakdown by cause, disconnects (or gaps with no queue
	// drops to blame) point at the subscriber, queue drops at the publisher.
	slow := ev.lost(recovery.CauseSlowConsumer, ev.SlowConsumerDisconnects > 0 || (ev.GapsWhileConnected > 0 && ev.PublisherQueueDrops == 0))
	over := ev.lost(recovery.CausePublisherOverflow, ev.PublisherQueueDrops > 0)
	switch {
	case slow > 0 && slow >= over:
		v.Result, v.Cause = Fail, recovery.CauseSlowConsumer.String()
		v.Evidence = fmt.Sprintf("yes: %s; %d message(s) lost", seen, slow)
		v.Remedy = "the subscriber cannot keep up: consume faster (less work per message, more subscribers), " +
			"raise --max-held-bytes and the publisher's --slow-timeout, and keep History retention (--history-messages) longer than the worst stall"
	case over > 0:
		v.Result, v.Cause = Fail, recovery.CausePublisherOverflow.String()
		v.Evidence = fmt.Sprintf("yes: %s; %d message(s) lost", seen, over)
		v.Remedy = "the publisher's PUB queue overflowed: raise its send high-water mark, publish in batches, " +
			"or slow the publisher; make History retention cover the burst so subscribers can repair"
	case symptom:
		v.Result = Pass
		v.Evidence = fmt.Sprintf("%s, all repaired by recovery (%d recovered)", seen, ev.RecoveredMessages)
	default:
		v.Result = Pass
		v.Evidence = "no gaps while connected"
	}
	return v
}

func checkReconnect(ev Evidence) Verdict {
	v := Verdict{Step: "Did the subscriber reconnect?", Cause: recovery.CauseReconnect.String()}
	if ev.Reconnects == 0 && ev.lost(recovery.CauseReconnect, false) == 0 {
		v.Result, v.Evidence = Pass, "no reconnects"
		return v
	}
	if n := ev.lost(recovery.CauseReconnect, ev.Reconnects > 0); n > 0 {
		v.Result = Fail
		v.Evidence = fmt.Sprintf("yes: %d reconnect(s); %d message(s) lost across them", ev.Reconnects, n)
		v.Remedy = "find why the connection drops (network, heartbeat timeouts, publisher load) and keep History " +
			"retention longer than the longest outage so the gap can be replayed"
		return v
	}
	v.Result = Pass
	v.Evidence = fmt.Sprintf("%d reconnect(s), nothing lost across them", ev.Reconnects)
	return v
}

func checkRestart(ev Evidence) Verdict {
	v := Verdict{Step: "Did the publisher restart?", Cause: recovery.CausePublisherRestart.String()}
	unknown := ev.UnknownTails[recovery.CausePublisherRestart]
	if ev.PublisherRestarts == 0 && ev.lost(recovery.CausePublisherRestart, false) == 0 && unknown == 0 {
		v.Result, v.Evidence = Pass, "no new publisher epoch seen"
		return v
	}
	if n := ev.lost(recovery.CausePublisherRestart, ev.PublisherRestarts > 0); n > 0 || unknown > 0 {
		v.Result = Fail
		v.Evidence = fmt.Sprintf("yes: %d restart(s); %d message(s) of the old epoch(s) lost", ev.PublisherRestarts, n)
		if unknown > 0 {
			v.Evidence += fmt.Sprintf(", and what %d stream(s) published after the last message received is unknown (no END)", unknown)
		}
		v.Remedy = "a restarted publisher starts a new epoch with empty History: find why it restarted, " +
			"and have it send END before a planned shutdown so subscribers can repair the tail first"
		return v
	}
	v.Result = Pass
	v.Evidence = fmt.Sprintf("%d restart(s), nothing lost", ev.PublisherRestarts)
	return v
}

func checkGone(ev Evidence) Verdict {
	v := Verdict{Step: "Did the publisher go silent before END?", Cause: recovery.CausePublisherGone.String()}
	if n := ev.UnknownTails[recovery.CausePublisherGone]; n > 0 {
		v.Result = Fail
		v.Evidence = fmt.Sprintf("yes: nothing arrived for the publisher timeout; what %d stream(s) published after the last message received is unknown", n)
		v.Remedy = "the publisher crashed, hung or was cut off by the network without sending END: find out which on its host; " +
			"raise --publisher-timeout if it only pauses longer than that"
		return v
	}
	v.Result, v.Evidence = Pass, "no: every publisher kept sending until END"
	return v
}

func checkRecovery(ev Evidence) Verdict {
	v := Verdict{Step: "Did recovery repair every gap?"}
	if ev.LostMessages == 0 {
		v.Result = Pass
		v.Evidence = fmt.Sprintf("yes: nothing lost, %d recovered", ev.RecoveredMessages)
		return v
	}
	v.Result = Fail
	v.Evidence = fmt.Sprintf("no: %d lost, %d recovered", ev.LostMessages, ev.RecoveredMessages)
	ret, to := ev.LostByCause[recovery.CauseBeyondRetention], ev.LostByCause[recovery.CauseTimeout]
	switch {
	case ret > 0 && ret >= to:
		v.Cause = recovery.CauseBeyondRetention.String()
		v.Evidence += fmt.Sprintf(" (%d beyond retention)", ret)
		v.Remedy = "the publisher no longer held them: raise its --history-messages and --history-bytes (HistoryConfig.MaxMessages, MaxBytes) to cover the longest repair"
	case to > 0:
		v.Cause = recovery.CauseTimeout.String()
		v.Evidence += fmt.Sprintf(" (%d timed out)", to)
		v.Remedy = "repairs did not finish in time: check the recovery endpoint is reachable and not rate limiting, raise --repair-timeout (StreamConfig.RepairTimeout)"
	default:
		v.Cause = recovery.CauseUnknown.String()
		v.Remedy = "look at the cause of each Loss event; raise the publisher's --history-messages/--history-bytes and --repair-timeout if they say beyond-retention or timeout"
	}
	return v
}

func checkReqRep(ev Evidence) Verdict {
	v := Verdict{Step: "Are you using REQ and REP?", Cause: "handshake-errors"}
	if ev.HandshakeErrors > 0 {
		v.Result = Fail
		v.Evidence = fmt.Sprintf("yes, for the sync handshake: %d error(s)", ev.HandshakeErrors)
		v.Remedy = "REQ/REP must strictly alternate send and recv and every error must be checked; a lost reply leaves a REQ socket stuck, " +
			"so it has to be closed and reopened (lazy pirate). Check the sync endpoint address and that the publisher is up"
		return v
	}
	v.Result, v.Evidence = Pass, "yes, for the sync handshake: no errors"
	return v
}

func checkThreads(ev Evidence) Verdict {
	v := Verdict{Step: "Are you using a socket in more than one thread?", Cause: "shared-socket"}
	if ev.SocketsSharedBetweenGoroutines {
		v.Result = Fail
		v.Evidence = "yes: a socket is used from more than one goroutine"
		v.Remedy = "give each socket one owning goroutine and pass messages to it over channels"
		return v
	}
	v.Result = Pass
	v.Evidence = "no: each syncmq socket is owned by one goroutine, others reach it over channels"
	return v
}
