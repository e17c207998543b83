package envelope_test

import (
	"fmt"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

var benchSizes = []struct {
	name string
	n    int
}{
	{"7B", 7},
	{"64B", 64},
	{"1KiB", 1024},
}

var benchBatches = []int{1, 256}

const benchTopic = "bench.orders.eu"

// benchPayload returns n bytes that are not all zero.
func benchPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + 7)
	}
	return p
}

// reportRecords adds a records/s metric for n records per operation.
func reportRecords(b *testing.B, n int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)*float64(n)/s, "records/s")
	}
}

// BenchmarkEncode measures encoding into a reused buffer, which must not
// allocate. SetBytes counts payload bytes, so MB/s is application data.
func BenchmarkEncode(b *testing.B) {
	h := dataHeader(1)
	for _, sz := range benchSizes {
		payload := benchPayload(sz.n)
		b.Run("single/"+sz.name, func(b *testing.B) {
			buf := make([]byte, 0, len(benchTopic)+envelope.HeaderSize+4+sz.n)
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				_, buf = envelope.Encode(buf, benchTopic, h, payload)
			}
		})
	}
	for _, n := range benchBatches {
		for _, sz := range benchSizes {
			payload := benchPayload(sz.n)
			b.Run(fmt.Sprintf("batch=%d/%s", n, sz.name), func(b *testing.B) {
				var bl envelope.Builder
				buf := make([]byte, 0, len(benchTopic)+envelope.HeaderSize+n*(4+sz.n))
				b.ReportAllocs()
				b.SetBytes(int64(n * sz.n))
				for b.Loop() {
					bl.Begin(buf, benchTopic, h)
					for range n {
						bl.Add(payload)
					}
					_, buf = bl.Finish()
				}
				reportRecords(b, n)
			})
		}
	}
}

// BenchmarkDecode measures Decode plus a full walk of Records, which is
// what a subscriber does per message.
func BenchmarkDecode(b *testing.B) {
	h := dataHeader(1)
	for _, sz := range benchSizes {
		fr, _ := envelope.Encode(nil, benchTopic, h, benchPayload(sz.n))
		frames := fr[:]
		b.Run("single/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			total := 0
			for b.Loop() {
				m, err := envelope.Decode(frames, envelope.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range m.Records() {
					total += len(p)
				}
			}
			if total == 0 && sz.n > 0 {
				b.Fatal("no payload seen")
			}
		})
	}
	for _, n := range benchBatches {
		for _, sz := range benchSizes {
			var bl envelope.Builder
			bl.Begin(nil, benchTopic, h)
			payload := benchPayload(sz.n)
			for range n {
				bl.Add(payload)
			}
			fr, _ := bl.Finish()
			frames := fr[:]
			for _, dec := range decoders {
				b.Run(fmt.Sprintf("batch=%d/%s/%s", n, sz.name, dec.name), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(n * sz.n))
					records := 0
					for b.Loop() {
						m, err := dec.decode(frames, envelope.Limits{})
						if err != nil {
							b.Fatal(err)
						}
						for range m.Records() {
							records++
						}
					}
					if records != b.N*n {
						b.Fatalf("saw %d records, want %d", records, b.N*n)
					}
					reportRecords(b, n)
				})
			}
		}
	}
}

// decoders are the two ways a subscriber decodes: Decode for what came
// over a socket, DecodeInProcess for an inproc:// publisher's own bytes.
var decoders = []struct {
	name   string
	decode func([][]byte, envelope.Limits) (envelope.Message, error)
}{{"checked", envelope.Decode}, {"in-process", envelope.DecodeInProcess}}
