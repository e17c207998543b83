package membership

import (
	"log"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newMemberlistLogger returns a standard logger for memberlist.Config.Logger
// that forwards each line to z.Named("memberlist"), mapping memberlist's
// level tags: "[DEBUG]" to Debug, "[INFO]" to Info, "[WARN]" to Warn,
// "[ERR]" and "[ERROR]" to Error. Untagged lines are logged at Info, or at
// Error when they start with "Err:". The "memberlist: " prefix is removed.
func newMemberlistLogger(z *zap.Logger) *log.Logger {
	return log.New(zapWriter{z: z.Named("memberlist")}, "", 0)
}

// zapWriter is the io.Writer behind newMemberlistLogger. log.Logger calls
// Write once per line and serialises calls.
type zapWriter struct{ z *zap.Logger }

// Write logs one line and never fails.
func (w zapWriter) Write(p []byte) (int, error) {
	lvl, msg := parseLogLine(string(p))
	if ce := w.z.Check(lvl, msg); ce != nil {
		ce.Write()
	}
	return len(p), nil
}

// logTags maps memberlist's level tags to zap levels.
var logTags = []struct {
	tag string
	lvl zapcore.Level
}{
	{"[DEBUG]", zapcore.DebugLevel},
	{"[INFO]", zapcore.InfoLevel},
	{"[WARN]", zapcore.WarnLevel},
	{"[ERR]", zapcore.ErrorLevel},
	{"[ERROR]", zapcore.ErrorLevel},
}

// parseLogLine splits a memberlist log line into a level and a message
// without the tag, the "memberlist: " prefix and the trailing newline.
func parseLogLine(line string) (zapcore.Level, string) {
	line = strings.TrimRight(line, "\r\n")
	lvl := zapcore.InfoLevel
	matched := false
	for _, t := range logTags {
		if rest, ok := strings.CutPrefix(line, t.tag); ok {
			lvl, line, matched = t.lvl, strings.TrimLeft(rest, " "), true
			break
		}
	}
	if !matched && strings.HasPrefix(line, "Err:") {
		lvl = zapcore.ErrorLevel
	}
	return lvl, strings.TrimPrefix(line, "memberlist: ")
}
