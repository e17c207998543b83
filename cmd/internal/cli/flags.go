package cli

import (
	"strings"

	"github.com/spf13/pflag"
)

// AddFlags declares one flag per field of the settings struct that
// defaults points to, with the struct's values as defaults.
//
// The flags only record what was typed. Parsing and checking happen when
// Load decodes every source together, so a run reports every bad value at
// once instead of stopping at the first flag pflag cannot parse.
func AddFlags(fs *pflag.FlagSet, defaults any) {
	for _, f := range Fields(defaults) {
		rv := &rawValue{typ: f.Kind}
		switch f.Kind {
		case "choice":
			rv.typ = strings.Join(f.Choices, "|")
		case "float":
			rv.typ = "number"
		case "bytes":
			rv.typ = "size"
		case "list":
			rv.typ = "strings"
		}
		var value pflag.Value = rv
		if f.Kind == "bool" {
			value = &rawBool{rv}
		}
		flag := fs.VarPF(value, f.Key, "", f.Help)
		flag.DefValue = f.Format(defaults)
		if f.Kind == "duration" && flag.DefValue == "0s" {
			flag.DefValue = "0" // pflag leaves a zero default out of the help
		}
		if f.Kind == "bool" {
			flag.NoOptDefVal = "true"
		}
	}
}

// rawValue is a flag value that keeps what was typed, unparsed. A list
// flag keeps every occurrence.
type rawValue struct {
	typ   string
	set   []string
	value string
}

func (r *rawValue) Set(s string) error {
	r.set = append(r.set, s)
	r.value = s
	return nil
}

func (r *rawValue) String() string { return r.value }

// Type is what --help shows as the flag's argument; "bool" shows none.
func (r *rawValue) Type() string { return r.typ }

// rawBool is a rawValue that pflag accepts without a value (--stdin).
type rawBool struct{ *rawValue }

// IsBoolFlag tells pflag so.
func (r *rawBool) IsBoolFlag() bool { return true }

// raw returns what the flag was given: the last value, or every value of
// a list flag.
func (r *rawValue) raw() any {
	if r.typ == "strings" {
		return append([]string(nil), r.set...)
	}
	return r.value
}
