package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"time"
	"unicode/utf8"

	"github.com/syncmq/syncmq/coord"
)

// printer writes received messages in the chosen output format.
type printer struct {
	w      *bufio.Writer
	format string
	n      uint64
	enc    *json.Encoder
}

func newPrinter(w *bufio.Writer, format string) *printer {
	return &printer{w: w, format: format, enc: json.NewEncoder(w)}
}

type jsonMessage struct {
	Topic     string `json:"topic"`
	Seq       uint64 `json:"seq"`
	Publisher string `json:"publisher"`
	Epoch     uint64 `json:"epoch"`
	Time      int64  `json:"time_ns"`
	Payload   string `json:"payload,omitempty"`
	Payload64 []byte `json:"payload_b64,omitempty"`
	Replay    bool   `json:"replay,omitempty"`
}

func (p *printer) handle(ev coord.Event) {
	if ev.Type != coord.EventMessage {
		return
	}
	p.n++
	switch p.format {
	case "text":
		p.w.WriteString(ev.Topic)
		p.w.WriteByte(' ')
		p.w.WriteString(strconv.FormatUint(ev.Seq, 10))
		p.w.WriteByte(' ')
		p.w.Write(ev.Payload)
		p.w.WriteByte('\n')
	case "json":
		m := jsonMessage{Topic: ev.Topic, Seq: ev.Seq, Publisher: ev.Publisher.String(), Epoch: ev.Epoch, Time: ev.Time, Replay: ev.Replay}
		if utf8.Valid(ev.Payload) {
			m.Payload = string(ev.Payload)
		} else {
			m.Payload64 = ev.Payload
		}
		_ = p.enc.Encode(m)
	}
}

// summary prints the zguide's closing line for --output count.
func (p *printer) summary(st coord.SubscriberStats) {
	if p.format == "count" {
		fmt.Fprintf(p.w, "Received %d updates\n", st.Received)
	}
	p.w.Flush()
}

// progress shows received, rate and gaps on a terminal at most once a second.
type progress struct {
	w        io.Writer
	received uint64
	gaps     uint64
	last     time.Time
	lastN    uint64
}

func newProgress(w io.Writer) *progress { return &progress{w: w, last: time.Now()} }

func (p *progress) update(ev coord.Event) {
	switch ev.Type {
	case coord.EventMessage:
		p.received++
	case coord.EventLoss:
		p.gaps++
	default:
		return
	}
	if p.received%1024 != 0 && ev.Type == coord.EventMessage {
		return // look at the clock only now and then
	}
	now := time.Now()
	if el := now.Sub(p.last); el >= time.Second {
		rate := float64(p.received-p.lastN) / el.Seconds()
		fmt.Fprintf(p.w, "\rreceived %d  rate %.0f/s  gaps %d   ", p.received, rate, p.gaps)
		p.last, p.lastN = now, p.received
	}
}

func (p *progress) finish() { fmt.Fprintln(p.w) }
