package membership

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzUnmarshalMeta checks that UnmarshalMeta never panics, that every
// error wraps ErrBadMeta, and that whatever it accepts re-encodes to the
// same bytes (the encoding is canonical). Seeds: testdata/fuzz/FuzzUnmarshalMeta.
func FuzzUnmarshalMeta(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMeta(b)
		if err != nil {
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("error %v does not wrap ErrBadMeta", err)
			}
			return
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v but cannot re-encode it: %v", m, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
	})
}

// TestFuzzSeedsAreLabelled checks that the committed seeds named valid-*
// decode and those named invalid-* do not, so the corpus covers both.
func TestFuzzSeedsAreLabelled(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzUnmarshalMeta")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no seed corpus in %s: %v", dir, err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		if len(lines) < 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a fuzz corpus file", e.Name())
		}
		lit := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
		b, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		_, err = UnmarshalMeta([]byte(b))
		if valid := strings.HasPrefix(e.Name(), "valid-"); valid != (err == nil) {
			t.Errorf("%s: UnmarshalMeta error = %v", e.Name(), err)
		}
	}
}
