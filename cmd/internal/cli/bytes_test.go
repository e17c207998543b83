package cli

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	good := map[string]Bytes{
		"0": 0, "4096": 4096, "4096B": 4096, "4096 b": 4096,
		"64KiB": 64 << 10, "64kib": 64 << 10, "256MiB": 256 << 20, "256 MiB": 256 << 20, "1GiB": 1 << 30, "2TiB": 2 << 40,
		"1.5GiB": 3 << 29, "0.5KiB": 512, "100MB": 100e6, "1kB": 1000, "3GB": 3e9, " 16MiB ": 16 << 20,
	}
	for in, want := range good {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := map[string]string{
		"": "is not a size", "-1": "is not a size", "+5": "is not a size", "12x": "is not a size", "MiB": "is not a size",
		"1e6": "is not a size", "NaN": "is not a size", "0.3B": "not a whole number of bytes", "1.1KiB": "not a whole number",
		"9999999TiB": "too large", "99999999999999999999": "too large",
	}
	for in, want := range bad {
		if got, err := ParseBytes(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseBytes(%q) = %d, %v; want an error saying %q", in, got, err, want)
		}
	}
}

func TestBytesString(t *testing.T) {
	for b, want := range map[Bytes]string{0: "0", 1: "1B", 1000: "1000B", 1024: "1KiB", 1536: "1536B", 64 << 20: "64MiB",
		3 << 29: "1536MiB", 1 << 30: "1GiB", 5 << 40: "5TiB"} {
		if got := b.String(); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", int64(b), got, want)
		}
		if back, err := ParseBytes(want); err != nil || back != b {
			t.Errorf("ParseBytes(%q) = %d, %v: does not round-trip", want, back, err)
		}
	}
}

// TestLoadSizes: a size takes a unit from a flag, the environment and the
// file, a plain YAML number is bytes, and --check-config prints it back
// with its unit.
func TestLoadSizes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  []string
		yaml string
		want Bytes
	}{
		{[]string{"--size", "256MiB"}, nil, "", 256 << 20},
		{nil, []string{"CLITEST_SIZE=1.5KiB"}, "", 1536},
		{nil, nil, "size: 268435456\n", 256 << 20},
		{nil, nil, "size: 64KiB\n", 64 << 10},
		{nil, nil, "", 64 << 20},
	} {
		t.Run(tt.want.String(), func(t *testing.T) {
			got, r, err := load(t, tt.args, tt.env, tt.yaml)
			if err != nil || got.Size != tt.want {
				t.Fatalf("%v %v %q: size %d, %v; want %d", tt.args, tt.env, tt.yaml, got.Size, err, tt.want)
			}
			var b strings.Builder
			if err := PrintSettings(&b, r); err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(b.String(), "\n") {
				if f := strings.Fields(l); len(f) > 1 && f[0] == "size" && f[1] != tt.want.String() {
					t.Errorf("--check-config shows size %s, want %v", f[1], tt.want)
				}
			}
		})
	}
	_, _, err := load(t, []string{"--size", "-3MiB"}, nil, "")
	if err == nil || !strings.Contains(err.Error(), `size: "-3MiB" is not a size like 256MiB`) {
		t.Errorf("a negative size: %v", err)
	}
}
