package cli

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// A settings struct declares a command's configuration, one field per
// flag:
//
//	type Options struct {
//		Expect  int           `mapstructure:"expect" unit:"subscribers" help:"subscribers that must join first"`
//		Timeout time.Duration `mapstructure:"timeout" help:"give up after this long (0: never)"`
//		Common  cli.Common    `mapstructure:",squash"`
//	}
//
// The mapstructure tag is the flag name, the config-file key and, upper
// case with underscores and the command's prefix, the environment
// variable. help is the flag's usage, unit is written in the generated
// docs, secret:"true" keeps the value out of --check-config, and
// only:"flag" makes a setting that only a flag can give. Field
// types: string, bool, int, float64, time.Duration and Bytes (all
// numbers, durations and sizes non-negative), []string (a comma-separated list, or a YAML
// list; a repeated flag adds to it), and string types with a Choices
// method. Embedded structs tagged ",squash" add their fields.

// Chooser is a string type whose values are limited to Choices.
type Chooser interface{ Choices() []string }

var (
	durationType = reflect.TypeFor[time.Duration]()
	bytesType    = reflect.TypeFor[Bytes]()
	chooserType  = reflect.TypeFor[Chooser]()
)

// Field describes one setting of a settings struct.
type Field struct {
	Key     string   // flag name and config-file key
	Help    string   // flag usage
	Unit    string   // unit of a number, "" for others
	Secret  bool     // never printed
	Flag    bool     // only a flag sets it: no variable, not in the file
	Choices []string // allowed values, for choice types
	Kind    string   // string, bool, int, float, duration, bytes, list or choice
	index   []int
}

// Fields lists the settings of the struct that opts points to, in
// declaration order. It panics on a field it cannot handle, which is a
// programming error caught by every test that builds a command.
func Fields(opts any) []Field {
	t := reflect.TypeOf(opts)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("cli: settings must be a pointer to a struct, not %v", t))
	}
	return fields(t.Elem(), nil)
}

func fields(t reflect.Type, prefix []int) []Field {
	var out []Field
	for i := range t.NumField() {
		sf := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		tag := sf.Tag.Get("mapstructure")
		if tag == ",squash" {
			out = append(out, fields(sf.Type, index)...)
			continue
		}
		if tag == "" || tag == "-" || !sf.IsExported() {
			panic(fmt.Sprintf("cli: field %s.%s needs a mapstructure tag", t.Name(), sf.Name))
		}
		f := Field{Key: tag, Help: sf.Tag.Get("help"), Unit: sf.Tag.Get("unit"), Secret: sf.Tag.Get("secret") == "true",
			Flag: sf.Tag.Get("only") == "flag", index: index}
		switch {
		case sf.Type.Implements(chooserType):
			f.Kind = "choice"
			f.Choices = reflect.Zero(sf.Type).Interface().(Chooser).Choices()
		case sf.Type == durationType:
			f.Kind = "duration"
		case sf.Type == bytesType:
			f.Kind = "bytes"
		case sf.Type.Kind() == reflect.String:
			f.Kind = "string"
		case sf.Type.Kind() == reflect.Bool:
			f.Kind = "bool"
		case sf.Type.Kind() == reflect.Int:
			f.Kind = "int"
		case sf.Type.Kind() == reflect.Float64:
			f.Kind = "float"
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.String:
			f.Kind = "list"
		default:
			panic(fmt.Sprintf("cli: field %s.%s has unsupported type %v", t.Name(), sf.Name, sf.Type))
		}
		out = append(out, f)
	}
	return out
}

// value returns the field's value in the struct that opts points to.
func (f Field) value(opts any) reflect.Value {
	return reflect.ValueOf(opts).Elem().FieldByIndex(f.index)
}

// Format renders the field's value in opts the way a flag would take it:
// durations as "30s", lists comma-separated. Secrets that are set show as
// "(set)".
func (f Field) Format(opts any) string {
	v := f.value(opts)
	if f.Secret {
		if v.IsZero() {
			return ""
		}
		return "(set)"
	}
	return formatValue(f.Kind, v)
}

func formatValue(kind string, v reflect.Value) string {
	switch kind {
	case "duration":
		return time.Duration(v.Int()).String()
	case "bytes":
		return Bytes(v.Int()).String()
	case "list":
		return strings.Join(v.Interface().([]string), ",")
	case "float":
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// EnvName is the environment variable for key: PREFIX_KEY, upper case,
// dashes as underscores.
func EnvName(prefix, key string) string {
	return strings.ToUpper(prefix + "_" + strings.ReplaceAll(key, "-", "_"))
}
