// Package cli holds what syncpub and syncsub share: configuration through
// flags, a YAML file and the environment (viper), logging (zap), and the
// exit codes. Packages outside cmd/ never see viper.
package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cast"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1 // the job ran but failed: messages lost, quorum timeout
	ExitUsage  = 2 // bad flags, config or environment
)

// UsageError is a configuration problem; main exits with ExitUsage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Config reads settings for one command: a flag wins over the environment
// (PREFIX_KEY, dashes as underscores), which wins over the --config file,
// which wins over the flag's default.
type Config struct {
	v   *viper.Viper
	cmd *cobra.Command
}

// Load binds cmd's flags, the environment with prefix, and the YAML file
// named by --config. Unknown keys in the file are errors.
func Load(cmd *cobra.Command, prefix string) (*Config, error) {
	v := viper.New()
	v.SetEnvPrefix(prefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	var known []string
	var bindErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		known = append(known, f.Name)
		if err := v.BindPFlag(f.Name, f); err != nil {
			bindErr = err
		}
	})
	if bindErr != nil {
		return nil, bindErr
	}
	if path, _ := cmd.Flags().GetString("config"); path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, Usagef("config %s: %v", path, err)
		}
		file := viper.New()
		file.SetConfigFile(path)
		file.SetConfigType("yaml")
		_ = file.ReadInConfig()
		for _, k := range file.AllKeys() {
			if !slices.Contains(known, k) {
				return nil, Usagef("config %s: unknown key %q", path, k)
			}
		}
	}
	return &Config{v: v, cmd: cmd}, nil
}

// String returns key as a string.
func (c *Config) String(key string) (string, error) {
	s, err := cast.ToStringE(c.v.Get(key))
	if err != nil {
		return "", Usagef("%s: %v", key, err)
	}
	return s, nil
}

// Strings returns key as a list; a comma-separated string is split.
func (c *Config) Strings(key string) ([]string, error) {
	raw := c.v.Get(key)
	var out []string
	switch x := raw.(type) {
	case string:
		out = strings.Split(x, ",")
	default:
		s, err := cast.ToStringSliceE(raw)
		if err != nil {
			return nil, Usagef("%s: %v", key, err)
		}
		for _, e := range s {
			out = append(out, strings.Split(e, ",")...)
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return strings.TrimSpace(s) == "" })
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out, nil
}

// Int returns key as a non-negative int.
func (c *Config) Int(key string) (int, error) {
	n, err := cast.ToIntE(c.v.Get(key))
	if err != nil {
		return 0, Usagef("%s: %q is not a whole number", key, fmt.Sprint(c.v.Get(key)))
	}
	if n < 0 {
		return 0, Usagef("%s: %d is negative", key, n)
	}
	return n, nil
}

// Float returns key as a non-negative float.
func (c *Config) Float(key string) (float64, error) {
	f, err := cast.ToFloat64E(c.v.Get(key))
	if err != nil || f < 0 {
		return 0, Usagef("%s: %q is not a non-negative number", key, fmt.Sprint(c.v.Get(key)))
	}
	return f, nil
}

// Bool returns key as a bool.
func (c *Config) Bool(key string) (bool, error) {
	b, err := cast.ToBoolE(c.v.Get(key))
	if err != nil {
		return false, Usagef("%s: %q is not true or false", key, fmt.Sprint(c.v.Get(key)))
	}
	return b, nil
}

// Duration returns key as a non-negative duration ("30s", "1m").
func (c *Config) Duration(key string) (time.Duration, error) {
	d, err := cast.ToDurationE(c.v.Get(key))
	if err != nil || d < 0 {
		return 0, Usagef("%s: %q is not a duration like 30s", key, fmt.Sprint(c.v.Get(key)))
	}
	return d, nil
}

// Choice returns key, which must be one of allowed.
func (c *Config) Choice(key string, allowed ...string) (string, error) {
	s, err := c.String(key)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, s) {
		return "", Usagef("%s: %q is not one of %s", key, s, strings.Join(allowed, ", "))
	}
	return s, nil
}

// AddCommonFlags adds --config, --log-level and --log-format.
func AddCommonFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML file with settings (keys are the flag names)")
	fs.String("log-level", "info", "debug, info, warn or error")
	fs.String("log-format", "console", "console or json")
}

// Logger builds the zap logger from --log-level and --log-format. Logs go
// to stderr; stdout is for the command's output.
func (c *Config) Logger() (*zap.Logger, error) {
	level, err := c.Choice("log-level", "debug", "info", "warn", "error")
	if err != nil {
		return nil, err
	}
	format, err := c.Choice("log-format", "console", "json")
	if err != nil {
		return nil, err
	}
	var lvl zapcore.Level
	_ = lvl.Set(level)
	var cfg zap.Config
	if format == "json" {
		cfg = zap.NewProductionConfig()
	} else {
		cfg = zap.NewDevelopmentConfig()
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		if !IsTerminal(os.Stderr) {
			cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
		}
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	return cfg.Build()
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Exit prints err in one line to stderr and exits with the matching code.
func Exit(name string, err error) {
	if err == nil {
		os.Exit(ExitOK)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	var ue *UsageError
	if errors.As(err, &ue) {
		os.Exit(ExitUsage)
	}
	os.Exit(ExitFailed)
}
