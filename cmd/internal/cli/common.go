package cli

import (
	"io"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// LogLevel is the zap level: debug, info, warn or error.
type LogLevel string

// Choices lists the levels.
func (LogLevel) Choices() []string { return []string{"debug", "info", "warn", "error"} }

// LogFormat is console (human) or json (one object per line).
type LogFormat string

// Choices lists the formats.
func (LogFormat) Choices() []string { return []string{"console", "json"} }

// Common holds the settings every command has. Embed it with
// `mapstructure:",squash"`.
type Common struct {
	Config    string    `mapstructure:"config" only:"flag" help:"YAML file with settings; keys are the flag names"`
	LogLevel  LogLevel  `mapstructure:"log-level" help:"log lines at this level and above go to stderr"`
	LogFormat LogFormat `mapstructure:"log-format" help:"log line format"`
}

// DefaultCommon returns the defaults: no file, info, console.
func DefaultCommon() Common { return Common{LogLevel: "info", LogFormat: "console"} }

// Logger builds the zap logger the settings ask for, writing to w (a
// Status on stderr: stdout is for the command's output).
func (c Common) Logger(w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(string(c.LogLevel)); err != nil {
		return nil, Usagef("log-level: %v", err)
	}
	var cfg zap.Config
	if c.LogFormat == "json" {
		cfg = zap.NewProductionConfig()
	} else {
		cfg = zap.NewDevelopmentConfig()
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		if !IsTerminal(os.Stderr) {
			cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
		}
		cfg.DisableStacktrace = true
	}
	var enc zapcore.Encoder
	if c.LogFormat == "json" {
		enc = zapcore.NewJSONEncoder(cfg.EncoderConfig)
	} else {
		enc = zapcore.NewConsoleEncoder(cfg.EncoderConfig)
	}
	// What cfg.Build would do, with w instead of a path.
	sink := zapcore.Lock(zapcore.AddSync(w))
	core := zapcore.NewCore(enc, sink, lvl)
	if cfg.Sampling != nil {
		core = zapcore.NewSamplerWithOptions(core, time.Second, cfg.Sampling.Initial, cfg.Sampling.Thereafter)
	}
	opts := []zap.Option{zap.ErrorOutput(sink)}
	if cfg.Development {
		opts = append(opts, zap.Development())
	}
	// The source line of a log call helps whoever debugs the code, not
	// whoever runs the command: only debug output carries it.
	if lvl == zapcore.DebugLevel {
		opts = append(opts, zap.AddCaller())
	}
	if !cfg.DisableStacktrace {
		stack := zapcore.ErrorLevel
		if cfg.Development {
			stack = zapcore.WarnLevel
		}
		opts = append(opts, zap.AddStacktrace(stack))
	}
	return zap.New(core, opts...), nil
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
