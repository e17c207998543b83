package envelope_test

import (
	"errors"
	"fmt"

	"github.com/syncmq/syncmq/envelope"
)

func Example() {
	pub, _ := envelope.ParseID("5e9a1100deadbeef0102030405060708")
	h := envelope.Header{Kind: envelope.KindData, Publisher: pub, Epoch: 3, Seq: 41, Time: 1_700_000_000_000_000_000}

	// Publisher: encode one record. Passing the buffer returned last time
	// instead of nil makes this allocation-free.
	frames, _ := envelope.Encode(nil, "orders.eu", h, []byte(`{"id":7}`))
	fmt.Println("frame sizes:", len(frames[0]), len(frames[1]), len(frames[2]))

	// Subscriber: decode the three frames it received.
	m, err := envelope.Decode(frames[:], envelope.Limits{})
	if err != nil {
		fmt.Println("bad message:", err)
		return
	}
	fmt.Println(m.Kind, string(m.Topic), m.Publisher.Short(), "epoch", m.Epoch)
	for seq, p := range m.Records() {
		fmt.Println(seq, string(p))
	}
	// Output:
	// frame sizes: 9 56 8
	// DATA orders.eu 5e9a1100 epoch 3
	// 41 {"id":7}
}

func ExampleBuilder() {
	h := envelope.Header{Kind: envelope.KindData, Epoch: 1, Seq: 100}

	var b envelope.Builder
	b.Begin(nil, "sensors/temp", h)
	for _, r := range []string{"21.5", "21.6", "", "21.9"} {
		b.Add([]byte(r))
	}
	frames, _ := b.Finish()

	m, err := envelope.Decode(frames[:], envelope.Limits{})
	if err != nil {
		fmt.Println("bad message:", err)
		return
	}
	fmt.Println("batch:", m.Flags&envelope.FlagBatch != 0, "count:", m.Count, "last seq:", m.LastSeq())
	for seq, p := range m.Records() {
		fmt.Printf("%d %q\n", seq, p)
	}
	// Output:
	// batch: true count: 4 last seq: 103
	// 100 "21.5"
	// 101 "21.6"
	// 102 ""
	// 103 "21.9"
}

func ExampleDecode_error() {
	frames, _ := envelope.Encode(nil, "orders.eu", envelope.Header{Kind: envelope.KindData, Seq: 1}, []byte("x"))
	frames[2] = []byte("y") // corrupted in transit; Len still matches

	_, err := envelope.Decode(frames[:], envelope.Limits{})
	fmt.Println(errors.Is(err, envelope.ErrChecksum))
	// Output:
	// true
}

func ExampleAppendTable() {
	payload := envelope.AppendTable(nil, []envelope.TopicSeq{{Topic: "orders.eu", Seq: 41}, {Topic: "sensors/temp", Seq: 103}})
	h := envelope.Header{Kind: envelope.KindHeartbeat, Epoch: 1}
	frames, _ := envelope.Encode(nil, envelope.ControlTopic, h, payload)

	m, err := envelope.Decode(frames[:], envelope.Limits{})
	if err != nil {
		fmt.Println("bad message:", err)
		return
	}
	table, _ := envelope.ParseTable(m.Payload)
	fmt.Println(m.Kind, table)
	// Output:
	// HEARTBEAT [{orders.eu 41} {sensors/temp 103}]
}
