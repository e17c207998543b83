package diagnose

import (
	"strings"
	"testing"

	"github.com/syncmq/syncmq/recovery"
)

func healthy() Evidence {
	return Evidence{
		Subscriptions:   []string{"orders."},
		TopicsPublished: []string{"orders.eu", "orders.us"},
		Received:        1000,
	}
}

func TestDiagnose(t *testing.T) {
	tests := []struct {
		name      string
		ev        func(*Evidence)
		cause     string
		failStep  string
		mentions  []string
		failCount int
	}{
		{name: "all pass", ev: func(*Evidence) {}},
		{name: "no subscription", ev: func(e *Evidence) { e.Subscriptions = nil },
			cause: "no-subscription", failStep: "Do you set a subscription", mentions: []string{"no subscription"}, failCount: 1},
		{name: "missing subscription", ev: func(e *Evidence) {
			e.Subscriptions = []string{"orders.us"}
			e.TopicsPublished = []string{"orders.us", "orders.eu", "fills"}
		}, cause: "no-subscription", failStep: "Do you set a subscription", mentions: []string{`"fills", "orders.eu"`}, failCount: 1},
		{name: "late join", ev: func(e *Evidence) {
			e.JoinedAfterPublishStart, e.MessagesBeforeJoin, e.StartedAtJoin = true, 250, true
		}, cause: "before-join", failStep: "Do you start the SUB socket after the PUB?", mentions: []string{"250 message(s)"}, failCount: 1},
		{name: "late join with nothing before", ev: func(e *Evidence) { e.JoinedAfterPublishStart = true }},
		{name: "late join replayed", ev: func(e *Evidence) {
			e.JoinedAfterPublishStart, e.MessagesBeforeJoin, e.RecoveredMessages = true, 250, 250
		}},
		{name: "never joined", ev: func(e *Evidence) { e.Checked, e.Joined = true, false },
			cause: "not-joined", failStep: "Did the subscriber reach the publisher", failCount: 1},
		{name: "before-join losses by cause", ev: func(e *Evidence) {
			e.LostMessages, e.LostByCause = 7, map[recovery.Cause]uint64{recovery.CauseBeforeJoin: 7}
		}, cause: "before-join", failStep: "Do you start the SUB socket after the PUB?", failCount: 2},
		{name: "slow consumer", ev: func(e *Evidence) {
			e.SlowConsumerDisconnects, e.GapsWhileConnected, e.LostMessages, e.RecoveredMessages = 3, 5, 120, 40
		}, cause: "slow-consumer", failStep: "Are you losing messages while connected", mentions: []string{"3 slow-consumer disconnect(s)", "120 message(s) lost"}, failCount: 2},
		{name: "gaps while connected all repaired", ev: func(e *Evidence) {
			e.GapsWhileConnected, e.RecoveredMessages = 5, 40
		}},
		{name: "publisher overflow", ev: func(e *Evidence) {
			e.PublisherQueueDrops, e.GapsWhileConnected, e.LostMessages = 900, 2, 900
		}, cause: "publisher-overflow", failStep: "Are you losing messages while connected", failCount: 2},
		{name: "overflow by cause outweighs slow", ev: func(e *Evidence) {
			e.SlowConsumerDisconnects, e.PublisherQueueDrops, e.LostMessages = 1, 1, 10
			e.LostByCause = map[recovery.Cause]uint64{recovery.CauseSlowConsumer: 2, recovery.CausePublisherOverflow: 8}
		}, cause: "publisher-overflow", failStep: "Are you losing messages while connected", failCount: 2},
		{name: "reconnect", ev: func(e *Evidence) { e.Reconnects, e.LostMessages = 2, 30 },
			cause: "reconnect", failStep: "Did the subscriber reconnect?", failCount: 2},
		{name: "reconnect without loss", ev: func(e *Evidence) { e.Reconnects, e.RecoveredMessages = 2, 30 }},
		{name: "publisher restart", ev: func(e *Evidence) { e.PublisherRestarts, e.LostMessages = 1, 30 },
			cause: "publisher-restart", failStep: "Did the publisher restart?", failCount: 2},
		{name: "beyond retention", ev: func(e *Evidence) {
			e.LostMessages, e.LostByCause = 30, map[recovery.Cause]uint64{recovery.CauseBeyondRetention: 20, recovery.CauseTimeout: 10}
		}, cause: "beyond-retention", failStep: "Did recovery repair every gap?", mentions: []string{"MaxMessages"}, failCount: 1},
		{name: "timeout", ev: func(e *Evidence) {
			e.LostMessages, e.LostByCause = 30, map[recovery.Cause]uint64{recovery.CauseTimeout: 30}
		}, cause: "timeout", failStep: "Did recovery repair every gap?", mentions: []string{"RepairTimeout"}, failCount: 1},
		{name: "unexplained loss", ev: func(e *Evidence) { e.LostMessages = 3 },
			cause: "unknown", failStep: "Did recovery repair every gap?", failCount: 1},
		{name: "restart with an unknown tail", ev: func(e *Evidence) {
			e.PublisherRestarts, e.UnknownTails = 1, map[recovery.Cause]int{recovery.CausePublisherRestart: 1}
		}, cause: "publisher-restart", failStep: "Did the publisher restart?", failCount: 1},
		{name: "publisher gone", ev: func(e *Evidence) {
			e.UnknownTails = map[recovery.Cause]int{recovery.CausePublisherGone: 2}
		}, cause: "publisher-gone", failStep: "Did the publisher go silent before END?", failCount: 1},
		{name: "handshake", ev: func(e *Evidence) { e.HandshakeErrors = 4 },
			cause: "handshake-errors", failStep: "Are you using REQ and REP?", failCount: 1},
		{name: "shared socket", ev: func(e *Evidence) { e.SocketsSharedBetweenGoroutines = true },
			cause: "shared-socket", failStep: "Are you using a socket in more than one thread?", failCount: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := healthy()
			tc.ev(&ev)
			r := Diagnose(ev)
			if len(r.Nodes) != 11 {
				t.Fatalf("%d nodes", len(r.Nodes))
			}
			if r.Cause != tc.cause || r.OK() != (tc.cause == "") {
				t.Fatalf("Cause = %q, want %q\n%s", r.Cause, tc.cause, r)
			}
			failed := r.Failed()
			if len(failed) != tc.failCount {
				t.Fatalf("%d failing nodes, want %d\n%s", len(failed), tc.failCount, r)
			}
			if tc.cause == "" {
				if r.Fix != "" {
					t.Fatalf("Fix %q without a cause", r.Fix)
				}
				return
			}
			first := failed[0]
			if !strings.HasPrefix(first.Step, tc.failStep) || r.Fix != first.Remedy || r.Fix == "" || first.Cause != r.Cause {
				t.Fatalf("first failing node %+v, fix %q", first, r.Fix)
			}
			out := r.String()
			for _, m := range tc.mentions {
				if !strings.Contains(out, m) {
					t.Errorf("report does not mention %q:\n%s", m, out)
				}
			}
			if !strings.Contains(out, "✘ "+first.Step) || !strings.Contains(out, "Cause: "+tc.cause+"\n") {
				t.Errorf("rendering:\n%s", out)
			}
		})
	}
}

func TestResultStrings(t *testing.T) {
	for _, c := range []struct {
		r         Result
		str, mark string
	}{{Pass, "pass", "✔"}, {Fail, "fail", "✘"}, {NotApplicable, "n/a", "–"}, {Result(9), "Result(9)", "–"}} {
		if c.r.String() != c.str || c.r.Mark() != c.mark {
			t.Errorf("%d: %q %q", c.r, c.r.String(), c.r.Mark())
		}
	}
}
