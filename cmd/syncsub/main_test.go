package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/coord"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPrinterFormats(t *testing.T) {
	ev := coord.Event{Type: coord.EventMessage, Topic: "update", Seq: 7, Payload: []byte("Rhubarb"), Epoch: 3}
	tests := []struct {
		format, want string
	}{
		{"text", "update 7 Rhubarb\n"},
		{"json", `"topic":"update","seq":7`},
		{"count", "Received 1 updates\n"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			p := newPrinter(w, tt.format)
			p.handle(ev)
			p.handle(coord.Event{Type: coord.EventLoss, From: 1, To: 2})
			p.summary(coord.SubscriberStats{Received: 1})
			if !strings.Contains(buf.String(), tt.want) {
				t.Fatalf("%s output %q does not contain %q", tt.format, buf.String(), tt.want)
			}
		})
	}
}

func TestPrinterBinaryPayloadAsBase64(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	p := newPrinter(w, "json")
	p.handle(coord.Event{Type: coord.EventMessage, Topic: "b", Seq: 1, Payload: []byte{0xff, 0xfe}})
	w.Flush()
	if !strings.Contains(buf.String(), `"payload_b64":"//4="`) {
		t.Fatalf("got %s", buf.String())
	}
}
