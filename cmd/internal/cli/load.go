package cli

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// Sources of a setting, strongest first.
const (
	SourceFlag    = "flag"
	SourceEnv     = "env"
	SourceFile    = "file"
	SourceDefault = "default"
)

// Setting is one resolved setting and where its value came from.
type Setting struct {
	Key    string
	Value  string // as Field.Format renders it
	Source string // SourceFlag, SourceEnv, SourceFile or SourceDefault
	From   string // the flag, variable or file that set it; "" for a default
}

// Resolved is a command's settings after Load.
type Resolved struct {
	Settings []Setting
}

// Source returns where key's value came from (SourceDefault for an
// unknown key).
func (r *Resolved) Source(key string) string {
	for _, s := range r.Settings {
		if s.Key == key {
			return s.Source
		}
	}
	return SourceDefault
}

// IsSet reports whether key was given by flag, environment or file rather
// than left at its default.
func (r *Resolved) IsSet(key string) bool { return r.Source(key) != SourceDefault }

// Load fills the settings struct that opts points to, which holds the
// defaults, from cmd's flags (declared with AddFlags), the environment
// (prefix_KEY) and the YAML file named by the "config" setting, in that
// order of precedence. Decoding uses viper's UnmarshalExact, so a key in
// the file that is no setting is an error. Every problem is reported at
// once: the error is a *UsageError joining one error per problem, each
// naming its key and where the bad value came from.
func Load(cmd *cobra.Command, prefix string, opts any) (*Resolved, error) {
	fs := Fields(opts)
	v := viper.New()
	v.SetEnvPrefix(prefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	var problems []error
	for _, f := range fs {
		v.SetDefault(f.Key, f.value(opts).Interface())
		if !f.Flag {
			if err := v.BindEnv(f.Key, EnvName(prefix, f.Key)); err != nil {
				return nil, err
			}
		}
		if fl := cmd.Flags().Lookup(f.Key); fl != nil && fl.Changed {
			switch rv := fl.Value.(type) {
			case *rawValue:
				v.Set(f.Key, rv.raw())
			case *rawBool:
				v.Set(f.Key, rv.raw())
			}
		}
	}
	path := configPath(cmd)
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			problems = append(problems, fmt.Errorf("config %s: %v", path, oneLine(err)))
		}
		for _, f := range fs {
			if f.Flag && v.InConfig(f.Key) {
				problems = append(problems, fmt.Errorf("config %s: %s can only be given as a flag", path, f.Key))
			}
		}
	}
	flagOnly := map[string]bool{}
	for _, f := range fs {
		flagOnly[f.Key] = f.Flag
	}
	from := func(key string) (string, string) { return source(cmd, v, prefix, path, flagOnly, key) }
	// Decode into a zero struct: every key has a value (the defaults are
	// viper's), and mapstructure would otherwise write lists into the
	// defaults' arrays and keep a default list where the value is empty.
	fresh := reflect.New(reflect.TypeOf(opts).Elem())
	if err := v.UnmarshalExact(fresh.Interface(), viper.DecodeHook(mapstructure.DecodeHookFuncType(decodeHook))); err != nil {
		problems = append(problems, decodeProblems(err, path, from)...)
	}
	if len(problems) > 0 {
		return nil, &UsageError{Err: errors.Join(problems...)}
	}
	reflect.ValueOf(opts).Elem().Set(fresh.Elem())
	r := &Resolved{}
	for _, f := range fs {
		src, origin := from(f.Key)
		r.Settings = append(r.Settings, Setting{Key: f.Key, Value: f.Format(opts), Source: src, From: origin})
	}
	return r, nil
}

// configPath is the --config flag. It is a flag only: a variable would
// also reach the subcommands, which share the prefix but not the keys.
func configPath(cmd *cobra.Command) string {
	if fl := cmd.Flags().Lookup("config"); fl != nil && fl.Changed {
		return fl.Value.String()
	}
	return ""
}

// source says where key's value comes from, mirroring viper's order.
// viper ignores empty environment variables, and so does this.
func source(cmd *cobra.Command, v *viper.Viper, prefix, path string, flagOnly map[string]bool, key string) (string, string) {
	if fl := cmd.Flags().Lookup(key); fl != nil && fl.Changed {
		return SourceFlag, "--" + key
	}
	if env := EnvName(prefix, key); !flagOnly[key] && os.Getenv(env) != "" {
		return SourceEnv, env
	}
	if path != "" && v.InConfig(key) {
		return SourceFile, path
	}
	return SourceDefault, ""
}

// decodeProblems turns mapstructure's joined errors into one error per
// problem: "key: what is wrong (where it came from)".
func decodeProblems(err error, path string, from func(string) (string, string)) []error {
	var out []error
	for _, leaf := range leaves(err) {
		var de *mapstructure.DecodeError
		if !errors.As(leaf, &de) {
			out = append(out, errors.New(oneLine(leaf)))
			continue
		}
		msg := oneLine(de.Unwrap())
		if de.Name() == "" {
			if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
				for _, k := range strings.Split(keys, ", ") {
					out = append(out, fmt.Errorf("config %s: unknown key %q", path, k))
				}
				continue
			}
		}
		key := de.Name()
		if src, origin := from(key); src != SourceDefault {
			msg += " (" + describeOrigin(src, origin) + ")"
		}
		out = append(out, fmt.Errorf("%s: %s", key, msg))
	}
	slices.SortStableFunc(out, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return out
}

func describeOrigin(src, origin string) string {
	switch src {
	case SourceFlag:
		return "flag " + origin
	case SourceEnv:
		return "environment " + origin
	case SourceFile:
		return "file " + origin
	}
	return src
}

// leaves flattens joined and wrapped errors down to the DecodeErrors (or
// other errors) that each describe one problem.
func leaves(err error) []error {
	if de, ok := err.(*mapstructure.DecodeError); ok {
		if inner := de.Unwrap(); isJoin(inner) {
			return leaves(inner)
		}
		return []error{de}
	}
	switch x := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, e := range x.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner := x.Unwrap(); inner != nil {
			return leaves(inner)
		}
	}
	return []error{err}
}

func isJoin(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
