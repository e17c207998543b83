package cli

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// decodeHook turns what a source holds into the field's type, checking it
// on the way. Flags and the environment give strings, YAML gives numbers,
// booleans, strings and lists, defaults are already typed. The error names
// no key: mapstructure adds it.
func decodeHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	switch {
	case to.Implements(chooserType):
		return toChoice(to, data)
	case to == durationType:
		return toDuration(data)
	case to == bytesType:
		return toBytes(data)
	}
	switch to.Kind() {
	case reflect.String:
		return toString(data)
	case reflect.Bool:
		return toBool(data)
	case reflect.Int:
		return toCount(data)
	case reflect.Float64:
		return toNonNegative(data)
	case reflect.Slice:
		if to.Elem().Kind() == reflect.String {
			return toList(data)
		}
	}
	return data, nil
}

func toString(data any) (string, error) {
	switch x := data.(type) {
	case string:
		return x, nil
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(x), nil // YAML's "id: 42"
	}
	if s, ok := stringKind(data); ok {
		return s, nil
	}
	return "", fmt.Errorf("%s is not a string", describe(data))
}

// stringKind returns the string inside a named string type.
func stringKind(data any) (string, bool) {
	v := reflect.ValueOf(data)
	if v.IsValid() && v.Kind() == reflect.String {
		return v.String(), true
	}
	return "", false
}

func toChoice(to reflect.Type, data any) (any, error) {
	s, ok := stringKind(data)
	if !ok {
		return nil, fmt.Errorf("%s is not one of %s", describe(data), strings.Join(reflect.Zero(to).Interface().(Chooser).Choices(), ", "))
	}
	allowed := reflect.Zero(to).Interface().(Chooser).Choices()
	if !slices.Contains(allowed, s) {
		return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
	}
	return s, nil
}

func toBool(data any) (bool, error) {
	switch x := data.(type) {
	case bool:
		return x, nil
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, nil
		}
	}
	return false, fmt.Errorf("%s is not true or false", describe(data))
}

func toCount(data any) (int, error) {
	var n int64
	switch x := data.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("%d is too large", x)
		}
		n = int64(x)
	case float64: // YAML's 1e6
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxInt64 {
			return 0, fmt.Errorf("%v is not a whole number", x)
		}
		n = int64(x)
	case string:
		var err error
		n, err = strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", x)
		}
	default:
		return 0, fmt.Errorf("%s is not a whole number", describe(data))
	}
	if n < 0 {
		return 0, fmt.Errorf("%d is negative", n)
	}
	if n > math.MaxInt {
		return 0, fmt.Errorf("%d is too large", n)
	}
	return int(n), nil
}

func toNonNegative(data any) (float64, error) {
	var f float64
	switch x := data.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case string:
		var err error
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", x)
		}
	default:
		return 0, fmt.Errorf("%s is not a number", describe(data))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%v is not a finite number", f)
	}
	if f < 0 {
		return 0, fmt.Errorf("%v is negative", f)
	}
	return f, nil
}

func toDuration(data any) (time.Duration, error) {
	var d time.Duration
	switch x := data.(type) {
	case time.Duration:
		d = x
	case string:
		s := strings.TrimSpace(x)
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			if n, nerr := strconv.Atoi(s); nerr == nil {
				return toDuration(n)
			}
			return 0, fmt.Errorf("%q is not a duration like 30s or 1m30s", x)
		}
	case int:
		if x == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("%d has no unit: write %ds, %dms or another duration", x, x, x)
	default:
		return 0, fmt.Errorf("%s is not a duration like 30s", describe(data))
	}
	if d < 0 {
		return 0, fmt.Errorf("%v is negative", d)
	}
	return d, nil
}

func toBytes(data any) (Bytes, error) {
	switch x := data.(type) {
	case Bytes:
		return x, nil
	case string:
		return ParseBytes(x)
	case int, int64, uint64, float64: // YAML's 268435456 or 1e6
		n, err := toCount(x)
		return Bytes(n), err
	}
	return 0, fmt.Errorf("%s is not a size like 256MiB", describe(data))
}

// toList splits comma-separated strings, trims spaces and drops empty
// items, so "a, b" and [a, b] and a repeated flag all give [a b].
func toList(data any) ([]string, error) {
	var items []string
	switch x := data.(type) {
	case string:
		items = []string{x}
	case []string:
		items = x
	case []any:
		for _, e := range x {
			s, err := toString(e)
			if err != nil {
				return nil, fmt.Errorf("list item %s", err)
			}
			items = append(items, s)
		}
	default:
		return nil, fmt.Errorf("%s is not a list", describe(data))
	}
	var out []string
	for _, it := range items {
		for _, s := range strings.Split(it, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// describe names a value of an unexpected kind for an error message.
func describe(data any) string {
	switch x := data.(type) {
	case nil:
		return "an empty value"
	case string:
		return strconv.Quote(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%v", data)
}
