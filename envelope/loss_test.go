package envelope_test

import (
	"errors"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

func TestLossRoundTrip(t *testing.T) {
	want := envelope.Loss{Topic: "prices.eur", From: 5, To: 9, Cause: "publisher-overflow"}
	fr, _ := envelope.Encode(nil, envelope.ControlTopic, controlHeader(envelope.KindLoss), envelope.AppendLoss(nil, want))
	m, err := envelope.Decode(fr[:], envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := envelope.ParseLoss(m.Payload)
	if err != nil || got != want || m.Kind != envelope.KindLoss || m.Kind.String() != "LOSS" {
		t.Fatalf("got %+v %v (%v), want %+v", got, err, m.Kind, want)
	}
}

func TestLossRejects(t *testing.T) {
	for name, l := range map[string]envelope.Loss{
		"empty topic":    {Topic: "", From: 1, To: 1, Cause: "unknown"},
		"reserved topic": {Topic: "\x00x", From: 1, To: 1, Cause: "unknown"},
		"zero from":      {Topic: "a", From: 0, To: 1, Cause: "unknown"},
		"reversed":       {Topic: "a", From: 3, To: 2, Cause: "unknown"},
		"no cause":       {Topic: "a", From: 1, To: 1},
		"control char":   {Topic: "a", From: 1, To: 1, Cause: "a\nb"},
	} {
		if _, err := envelope.ParseLoss(envelope.AppendLoss(nil, l)); !errors.Is(err, envelope.ErrLoss) {
			t.Errorf("%s: %v, want ErrLoss", name, err)
		}
	}
	p := append(envelope.AppendLoss(nil, envelope.Loss{Topic: "a", From: 1, To: 1, Cause: "unknown"}), 0)
	if _, err := envelope.ParseLoss(p); !errors.Is(err, envelope.ErrLoss) {
		t.Errorf("trailing byte: %v, want ErrLoss", err)
	}
}
