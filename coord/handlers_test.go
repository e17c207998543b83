package coord

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

func TestHandlersDispatch(t *testing.T) {
	id := envelope.ID{1}
	gone := errors.New("gone")
	events := []Event{
		{Type: EventJoined, Publisher: id, Epoch: 7, Endpoint: "tcp://h:1"},
		{Type: EventMessage, Publisher: id, Epoch: 7, Topic: "a", Seq: 1, Payload: []byte("x"), Time: 5, Replay: true},
		{Type: EventLoss, Publisher: id, Epoch: 7, Topic: "a", From: 2, To: 4, Cause: "timeout"},
		{Type: EventLoss, Publisher: id, Epoch: 7, Topic: "a", From: 5, OpenEnded: true, Cause: "publisher-gone"},
		{Type: EventEnd, Publisher: id, Epoch: 7, Cause: EndPublisherGone, Err: gone},
		{Type: EventEnd, Publisher: id, Epoch: 8},
	}
	var got []string
	h := Handlers{
		OnMessage: func(m Message) { got = append(got, fmt.Sprintf("msg %+v", m)) },
		OnLoss: func(l Loss) {
			got = append(got, fmt.Sprintf("loss %d-%d open=%v count=%d %s", l.From, l.To, l.OpenEnded, l.Count(), l.Cause))
		},
		OnEnd: func(e End) {
			got = append(got, fmt.Sprintf("end %d completed=%v %q %v", e.Epoch, e.Completed, e.Cause, e.Err))
		},
		OnOther: func(ev Event) { got = append(got, "other "+ev.Type.String()) },
	}.Handler()
	for _, ev := range events {
		h(ev)
	}
	want := []string{
		"other joined",
		fmt.Sprintf("msg %+v", Message{Publisher: id, Epoch: 7, Topic: "a", Seq: 1, Payload: []byte("x"), Time: 5, Replay: true}),
		"loss 2-4 open=false count=3 timeout",
		"loss 5-0 open=true count=0 publisher-gone",
		`end 7 completed=false "publisher-gone" gone`,
		`end 8 completed=true "" <nil>`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	Handlers{}.Handler()(events[1]) // nil callbacks skip their events
}

// TestDefaultSubscriberConfigIsWhatZeroMeans: the defaults spelled out
// are the ones zero fields take, and they validate.
func TestDefaultSubscriberConfigIsWhatZeroMeans(t *testing.T) {
	d := DefaultSubscriberConfig()
	d.Handler = func(Event) {}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	z := SubscriberConfig{ID: "x", Handler: d.Handler}.withDefaults()
	dd := d
	dd.ID = "x"
	dd = dd.withDefaults()
	z.Handler, dd.Handler, z.Logger, dd.Logger = nil, nil, nil, nil
	if !reflect.DeepEqual(z, dd) {
		t.Fatalf("zero config with defaults\n%+v\ndefault config\n%+v", z, dd)
	}
}
