package cli

import (
	"reflect"
	"testing"
	"time"
)

var hookTargets = []reflect.Type{
	reflect.TypeFor[string](), reflect.TypeFor[bool](), reflect.TypeFor[int](), reflect.TypeFor[float64](),
	reflect.TypeFor[time.Duration](), reflect.TypeFor[[]string](), reflect.TypeFor[color](),
}

func TestDecodeHook(t *testing.T) {
	tests := []struct {
		to   reflect.Type
		in   any
		want any // nil: an error
	}{
		{reflect.TypeFor[int](), "12", 12},
		{reflect.TypeFor[int](), " 12 ", 12},
		{reflect.TypeFor[int](), "-1", nil},
		{reflect.TypeFor[int](), "1.5", nil},
		{reflect.TypeFor[int](), 1.5, nil},
		{reflect.TypeFor[int](), 2e6, 2000000},
		{reflect.TypeFor[int](), []any{1}, nil},
		{reflect.TypeFor[float64](), "0.5", 0.5},
		{reflect.TypeFor[float64](), "NaN", nil},
		{reflect.TypeFor[float64](), -2, nil},
		{reflect.TypeFor[time.Duration](), "1m30s", 90 * time.Second},
		{reflect.TypeFor[time.Duration](), "0", time.Duration(0)},
		{reflect.TypeFor[time.Duration](), 0, time.Duration(0)},
		{reflect.TypeFor[time.Duration](), 30, nil},
		{reflect.TypeFor[time.Duration](), "-1s", nil},
		{reflect.TypeFor[bool](), "TRUE", true},
		{reflect.TypeFor[bool](), "yes", nil},
		{reflect.TypeFor[color](), "green", "green"},
		{reflect.TypeFor[color](), "blue", nil},
		{reflect.TypeFor[color](), 3, nil},
		{reflect.TypeFor[string](), map[string]any{}, nil},
	}
	for _, tt := range tests {
		got, err := decodeHook(nil, tt.to, tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%v from %#v: no error, got %#v", tt.to, tt.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v from %#v: got %#v, %v; want %#v", tt.to, tt.in, got, err, tt.want)
		}
	}
}

// FuzzDecodeHook: any string, as a flag or variable gives it, decodes to
// the target type or is refused; it never panics.
func FuzzDecodeHook(f *testing.F) {
	for _, s := range []string{"", "0", "-1", "30s", "1e9", "a,b,,c", "true", "red", "9223372036854775808", "1_000", " 5 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, to := range hookTargets {
			got, err := decodeHook(nil, to, s)
			if err != nil {
				continue
			}
			if got == nil {
				if to.Kind() != reflect.Slice {
					t.Fatalf("%v from %q: nil without an error", to, s)
				}
				continue
			}
			if rt := reflect.TypeOf(got); !rt.ConvertibleTo(to) {
				t.Fatalf("%v from %q gave a %v", to, s, rt)
			}
		}
	})
}
