package main

import (
	"bufio"
	"io"
	"testing"

	"github.com/syncmq/syncmq/coord"
)

// BenchmarkPrinter measures the per-message cost of each output format,
// the handler's hot path (writing to a discarding buffer).
func BenchmarkPrinter(b *testing.B) {
	ev := coord.Event{Type: coord.EventMessage, Publisher: pubID, Epoch: 1795999869175499134, Topic: "update", Seq: 1, Payload: []byte("Rhubarb"), Time: 1795999869175499134}
	for _, format := range []string{"text", "json", "runs", "count"} {
		b.Run(format, func(b *testing.B) {
			p := newPrinter(bufio.NewWriterSize(io.Discard, 64<<10), &lines{}, format)
			b.ReportAllocs()
			b.SetBytes(int64(len(ev.Payload)))
			for i := 0; b.Loop(); i++ {
				ev.Seq = uint64(i + 1)
				p.handle(ev)
			}
		})
	}
}
