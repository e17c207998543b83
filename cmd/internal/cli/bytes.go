package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bytes is a size setting in bytes. It is written with a unit, as
// "256MiB", "64KiB" or "1.5GiB" (powers of 1024), "100MB" (powers of
// 1000), or "4096" and "4096B" (bytes); units are case-insensitive and
// may follow a space. It is never negative.
type Bytes int64

// byteUnits are the units ParseBytes takes, longest first so that "KiB"
// is not read as "B".
var byteUnits = []struct {
	name string
	size int64
}{
	{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"tb", 1e12}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3},
	{"b", 1},
}

// ParseBytes parses a size as Bytes documents it.
func ParseBytes(s string) (Bytes, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	unit := int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(t, u.name); ok {
			t, unit = strings.TrimSpace(n), u.size
			break
		}
	}
	if t == "" || strings.ContainsAny(t, "+-eEnN") { // no signs, exponents, NaN or Inf
		return 0, fmt.Errorf("%q is not a size like 256MiB, 64KiB or 4096", s)
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n > math.MaxInt64/unit {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return Bytes(n * unit), nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size like 256MiB, 64KiB or 4096", s)
	}
	v := f * float64(unit)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return Bytes(v), nil
}

// String renders b with the largest power-of-1024 unit that divides it
// ("256MiB", "1536KiB"), else in bytes ("1000B"); zero is "0".
func (b Bytes) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range byteUnits[:4] {
		if int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + unitName(u.name)
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

func unitName(lower string) string {
	return strings.ToUpper(lower[:1]) + lower[1:2] + strings.ToUpper(lower[2:])
}

// Int returns b as an int, for the libraries' int fields.
func (b Bytes) Int() int { return int(min(int64(b), math.MaxInt)) }
