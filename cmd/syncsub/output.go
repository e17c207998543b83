package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/syncmq/syncmq/coord"
)

// printer writes what the subscriber receives in the chosen format:
//
//   - text: "topic seq payload" lines on stdout, events as readable lines
//     on stderr, the summary on stderr;
//   - json: one object per line on stdout, each with a "type": message,
//     the events (joined, loss, caught-up, publisher-restart, end) and a
//     final summary;
//   - runs: as json, but each stream's consecutive deliveries folded into
//     one "run" line (from, to, count), written before any other event,
//     at the summary, before a checkpoint, when a run reaches
//     maxRunRecords, and every runFlushInterval while deliveries come
//     (the clock is read every clockEvery of them; runs.go);
//   - count: the zguide's "Received N updates" and an outcome line on
//     stdout at the end, events on stderr.
//
// Log lines never go to stdout.
type printer struct {
	out    *bufio.Writer
	events lineWriter // stderr, for text and count
	format string
	enc    *json.Encoder
	runs   runs // open runs, for runs
}

// lineWriter takes whole lines (a *cli.Status on stderr).
type lineWriter interface{ Println(a ...any) }

func newPrinter(out *bufio.Writer, events lineWriter, format string) *printer {
	return &printer{out: out, events: events, format: format, enc: json.NewEncoder(out)}
}

// Type names of the JSON lines.
const (
	typeMessage = "message"
	typeJoined  = "joined"
	typeLoss    = "loss"
	typeCaught  = "caught-up"
	typeRestart = "publisher-restart"
	typeEnd     = "end"
	typeSummary = "summary"
)

type jsonMessage struct {
	Type      string `json:"type"`
	Topic     string `json:"topic"`
	Seq       uint64 `json:"seq"`
	Publisher string `json:"publisher"`
	Epoch     uint64 `json:"epoch"`
	Time      int64  `json:"time_ns"`
	Payload   string `json:"payload,omitempty"`
	Payload64 []byte `json:"payload_b64,omitempty"`
	Replay    bool   `json:"replay,omitempty"`
}

type jsonJoined struct {
	Type      string `json:"type"`
	Publisher string `json:"publisher"`
	Epoch     uint64 `json:"epoch"`
	Endpoint  string `json:"endpoint"`
}

type jsonLoss struct {
	Type      string `json:"type"`
	Publisher string `json:"publisher"`
	Epoch     uint64 `json:"epoch"`
	Topic     string `json:"topic"`
	From      uint64 `json:"from"`
	To        uint64 `json:"to"`
	Count     uint64 `json:"count"`
	Cause     string `json:"cause"`
}

type jsonCaughtUp struct {
	Type      string `json:"type"`
	Publisher string `json:"publisher"`
	Epoch     uint64 `json:"epoch"`
	Topic     string `json:"topic"`
	Seq       uint64 `json:"seq"`
}

type jsonRestart struct {
	Type      string `json:"type"`
	Publisher string `json:"publisher"`
	Epoch     uint64 `json:"epoch"`
}

type jsonEnd struct {
	Type      string `json:"type"`
	Publisher string `json:"publisher"`
	Epoch     uint64 `json:"epoch"`
	Cause     string `json:"cause,omitempty"`
}

type jsonSummary struct {
	Type       string `json:"type"`
	Outcome    string `json:"outcome"`
	ExitCode   int    `json:"exit_code"`
	Reason     string `json:"reason,omitempty"`
	Received   uint64 `json:"received"`
	Recovered  uint64 `json:"recovered"`
	Lost       uint64 `json:"lost"`
	LossEvents uint64 `json:"loss_events"`
	Unknown    uint64 `json:"unknown_tails"`
	Gaps       uint64 `json:"gaps"`
	Duplicates uint64 `json:"duplicates"`
	Restarts   uint64 `json:"restarts"`
	Ended      int    `json:"publishers_ended"`
}

func (p *printer) handle(ev coord.Event) {
	if ev.Type == coord.EventMessage {
		p.message(ev)
		return
	}
	if p.format == "runs" {
		p.flushRuns()
	}
	if p.format == "json" || p.format == "runs" {
		p.jsonEvent(ev)
	} else if line := eventLine(ev); line != "" {
		p.events.Println(line)
	}
}

func (p *printer) message(ev coord.Event) {
	switch p.format {
	case "text":
		p.out.WriteString(ev.Topic)
		p.out.WriteByte(' ')
		p.out.WriteString(strconv.FormatUint(ev.Seq, 10))
		p.out.WriteByte(' ')
		p.out.Write(ev.Payload)
		p.out.WriteByte('\n')
	case "json":
		m := jsonMessage{Type: typeMessage, Topic: ev.Topic, Seq: ev.Seq, Publisher: ev.Publisher.String(), Epoch: ev.Epoch, Time: ev.Time, Replay: ev.Replay}
		if utf8.Valid(ev.Payload) {
			m.Payload = string(ev.Payload)
		} else {
			m.Payload64 = ev.Payload
		}
		_ = p.enc.Encode(m)
	case "runs":
		p.extendRun(ev)
	}
}

func (p *printer) jsonEvent(ev coord.Event) {
	pub := ev.Publisher.String()
	switch ev.Type {
	case coord.EventJoined:
		_ = p.enc.Encode(jsonJoined{typeJoined, pub, ev.Epoch, ev.Endpoint})
	case coord.EventLoss:
		_ = p.enc.Encode(jsonLoss{typeLoss, pub, ev.Epoch, ev.Topic, ev.From, ev.To, lossCount(ev), ev.Cause})
	case coord.EventCaughtUp:
		_ = p.enc.Encode(jsonCaughtUp{typeCaught, pub, ev.Epoch, ev.Topic, ev.Seq})
	case coord.EventRestart:
		_ = p.enc.Encode(jsonRestart{typeRestart, pub, ev.Epoch})
	case coord.EventEnd:
		_ = p.enc.Encode(jsonEnd{typeEnd, pub, ev.Epoch, ev.Cause})
	}
}

// eventLine renders an event for a person; "" for events not shown.
func eventLine(ev coord.Event) string {
	pub := ev.Publisher.Short()
	switch ev.Type {
	case coord.EventJoined:
		return fmt.Sprintf("joined publisher %s (epoch %d) at %s", pub, ev.Epoch, ev.Endpoint)
	case coord.EventLoss:
		if ev.OpenEnded {
			return fmt.Sprintf("LOST %s from %d on (how many is unknown) from publisher %s epoch %d: %s", ev.Topic, ev.From, pub, ev.Epoch, ev.Cause)
		}
		return fmt.Sprintf("LOST %s %d-%d (%d messages) from publisher %s epoch %d: %s", ev.Topic, ev.From, ev.To, lossCount(ev), pub, ev.Epoch, ev.Cause)
	case coord.EventCaughtUp:
		return fmt.Sprintf("caught up: %s live again at seq %d (publisher %s)", ev.Topic, ev.Seq, pub)
	case coord.EventRestart:
		return fmt.Sprintf("publisher %s restarted: new epoch %d", pub, ev.Epoch)
	case coord.EventEnd:
		if ev.Cause != "" {
			return fmt.Sprintf("END from publisher %s epoch %d: %s", pub, ev.Epoch, ev.Cause)
		}
		return fmt.Sprintf("END from publisher %s epoch %d", pub, ev.Epoch)
	}
	return ""
}

// latencyLine reports the publish-to-deliver latency percentiles from the
// subscriber's histogram, as the benchmarks report theirs.
func latencyLine(h coord.LatencyHistogram) string {
	if h.Count == 0 {
		return "latency: no live deliveries"
	}
	return fmt.Sprintf("latency p50 %s, p99 %s (publish to deliver, %d live deliveries)",
		formatLatency(h.Quantile(0.50)), formatLatency(h.Quantile(0.99)), h.Count)
}

// formatLatency prints d with about three significant digits.
func formatLatency(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func lossCount(ev coord.Event) uint64 {
	if ev.To < ev.From {
		return 0
	}
	return ev.To - ev.From + 1
}

// summary prints how the run ended, then flushes stdout.
func (p *printer) summary(v verdict, st coord.SubscriberStats, ended int) {
	outcome := fmt.Sprintf("outcome %s: lost %d, recovered %d, gaps %d", v.outcome, st.Lost, st.Recovered, st.Gaps)
	if st.UnknownTails > 0 {
		outcome += fmt.Sprintf(", unknown tails %d", st.UnknownTails)
	}
	switch p.format {
	case "count":
		fmt.Fprintf(p.out, "Received %d updates\n%s\n%s\n", st.Received, outcome, latencyLine(st.Latency))
	case "json", "runs":
		p.flushRuns()
		_ = p.enc.Encode(jsonSummary{Type: typeSummary, Outcome: v.outcome, ExitCode: v.code, Reason: v.reason,
			Received: st.Received, Recovered: st.Recovered, Lost: st.Lost, LossEvents: st.LossEvents, Unknown: st.UnknownTails, Gaps: st.Gaps,
			Duplicates: st.Duplicates, Restarts: st.Restarts, Ended: ended})
	default:
		p.events.Println(fmt.Sprintf("received %d updates; %s", st.Received, outcome))
	}
	p.out.Flush()
}
