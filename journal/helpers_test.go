package journal_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/journal"
)

var testPub = envelope.ID{0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0x01}

const baseTime = int64(1_700_000_000_000_000_000)

// payloadOf returns the payload of record seq of topic: its length varies
// with seq and its bytes name both, so a test can tell any two apart.
func payloadOf(topic string, seq uint64, size int) []byte {
	if size < 0 {
		size = int(seq*7%53) + 1
	}
	p := make([]byte, size)
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq) // low bytes first, so short payloads differ too
	n := copy(p, s[:])
	n += copy(p[n:], topic)
	for i := n; i < size; i++ {
		p[i] = byte(seq) + byte(i)
	}
	return p
}

// frames builds a DATA envelope of count records starting at seq.
func frames(epoch uint64, topic string, seq uint64, count, size int) envelope.Frames {
	var b envelope.Builder
	b.Begin(nil, topic, envelope.Header{Kind: envelope.KindData, Publisher: testPub, Epoch: epoch, Seq: seq, Time: baseTime + int64(seq)})
	for i := range count {
		b.Add(payloadOf(topic, seq+uint64(i), size))
	}
	f, _ := b.Finish()
	return f
}

// framesAt is frames with a given publish time.
func framesAt(epoch uint64, topic string, seq uint64, count int, t int64) envelope.Frames {
	var b envelope.Builder
	b.Begin(nil, topic, envelope.Header{Kind: envelope.KindData, Publisher: testPub, Epoch: epoch, Seq: seq, Time: t})
	for i := range count {
		b.Add(payloadOf(topic, seq+uint64(i), -1))
	}
	f, _ := b.Finish()
	return f
}

func testConfig() journal.Config {
	cfg := journal.DefaultConfig()
	cfg.Publisher = testPub
	return cfg
}

func open(t testing.TB, dir string, cfg journal.Config) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func mustAppend(t testing.TB, j *journal.Journal, f envelope.Frames) {
	t.Helper()
	if err := j.Append(f); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// rec is one record read back.
type rec struct {
	seq     uint64
	payload []byte
}

// readAll reads every record of a stream and checks that each is the
// payload it was written with.
func readAll(t testing.TB, j *journal.Journal, epoch uint64, topic string) ([]rec, journal.Range) {
	t.Helper()
	var out []rec
	rng, err := j.Read(epoch, topic, 1, ^uint64(0), func(b journal.Batch) bool {
		if string(b.Frames[0]) != topic || b.Header.Epoch != epoch {
			t.Errorf("batch of %q epoch %d in stream %q %d", b.Frames[0], b.Header.Epoch, topic, epoch)
		}
		m := b.Message()
		for seq, p := range m.Records() {
			out = append(out, rec{seq, slices.Clone(p)})
		}
		return true
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return out, rng
}

// seqs returns the sequences of rs.
func seqs(rs []rec) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.seq
	}
	return out
}

// checkPayloads fails unless every record has the payload payloadOf gives
// for size.
func checkPayloads(t testing.TB, topic string, rs []rec, size int) {
	t.Helper()
	for _, r := range rs {
		if want := payloadOf(topic, r.seq, size); !bytes.Equal(r.payload, want) {
			t.Fatalf("%s seq %d: payload %x, want %x", topic, r.seq, r.payload, want)
		}
	}
}

func span(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// segments lists the segment files of dir, sorted.
func segments(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func filepathGlob(dir, pattern string) ([]string, error) {
	return filepath.Glob(filepath.Join(dir, pattern))
}

func removeFile(p string) error { return os.Remove(p) }
