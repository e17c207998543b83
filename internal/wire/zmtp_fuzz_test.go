package wire

import (
	"bytes"
	"testing"
)

// FuzzReadMsg feeds arbitrary bytes to a frame reader, strict (as on a
// Pub, Sub and Client) and lenient (as on a Server), and checks that it
// never panics or hangs and never returns more than its limits allow:
// at most maxFrames frames, each within maxFrame unless the message is
// marked tooLarge (then an oversized frame is cut to TooLargeHead), and
// a size that covers what it returned.
func FuzzReadMsg(f *testing.F) {
	seeds := [][]byte{
		appendMsg(nil, [][]byte{[]byte("topic"), []byte("payload")}),
		appendMsg(nil, [][]byte{{}, bytes.Repeat([]byte("x"), 300)}),
		appendMsg(nil, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}),
		append([]byte{flagCommand, 10, 9}, "SUBSCRIBEt"...),
		{flagLong, 0, 0, 0, 0, 0, 0, 1, 0},                      // a 256-byte frame, truncated
		{flagLong | flagMore, 0xff, 0, 0, 0, 0, 0, 0, 0},        // absurd size
		{flagMore, 1, 'a', flagMore, 1, 'b', flagMore, 0, 0, 0}, // many small frames
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxFrame, maxFrames = 64, 3
		for _, hardCap := range []int64{0, 16 * (maxFrame + 9)} {
			fr := newFrameReader(bytes.NewReader(data), 16, maxFrame, maxFrames)
			fr.hardCap = hardCap
			fr.slabSize = slabSize
			for i := 0; i <= len(data); i++ { // each message takes at least one byte
				frames, info, err := fr.readMsg(nil)
				if err != nil {
					break
				}
				if len(frames) > maxFrames {
					t.Fatalf("%d frames, limit %d", len(frames), maxFrames)
				}
				var sum int64
				for _, fr := range frames {
					sum += int64(len(fr))
					if len(fr) > maxFrame && !(info.tooLarge && len(fr) <= TooLargeHead) {
						t.Fatalf("frame of %d bytes (tooLarge %v)", len(fr), info.tooLarge)
					}
				}
				if info.tooLarge && hardCap == 0 {
					t.Fatal("a strict reader returned a tooLarge message")
				}
				if info.size < sum || (hardCap > 0 && info.size > hardCap) {
					t.Fatalf("size %d for %d bytes returned (hard cap %d)", info.size, sum, hardCap)
				}
			}
		}
	})
}
