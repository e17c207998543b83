package membership

import (
	"log"
	"strings"
	"sync/atomic"

	"github.com/syncmq/syncmq/internal/ratelog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newMemberlistLogger returns a standard logger for memberlist.Config.Logger
// that forwards each line to z.Named("memberlist"), mapping memberlist's
// level tags: "[DEBUG]" to Debug, "[INFO]" to Info, "[WARN]" to Warn,
// "[ERR]" and "[ERROR]" to Error. Untagged lines are logged at Info, or at
// Error when they start with "Err:". The "memberlist: " prefix is removed.
//
// Warn and error lines are what a peer can trigger at will (garbage on
// the gossip port, failed probes): each is counted in warnings and
// written through internal/ratelog, at most one line per kind per 10 s,
// the kind being the message up to its first digit, colon or
// parenthesis ("UDP packet too short", "failed to receive").
func newMemberlistLogger(z *zap.Logger, warnings *atomic.Uint64) *log.Logger {
	z = z.Named("memberlist")
	return log.New(zapWriter{z: z, rl: ratelog.New(z, 0), warnings: warnings}, "", 0)
}

// zapWriter is the io.Writer behind newMemberlistLogger. log.Logger calls
// Write once per line and serialises calls.
type zapWriter struct {
	z        *zap.Logger
	rl       *ratelog.Logger
	warnings *atomic.Uint64
}

// Write logs one line and never fails.
func (w zapWriter) Write(p []byte) (int, error) {
	lvl, msg := parseLogLine(string(p))
	if lvl >= zapcore.WarnLevel {
		w.warnings.Add(1)
		w.rl.Log(lvl, "memberlist:"+lineKind(msg), msg)
		return len(p), nil
	}
	if ce := w.z.Check(lvl, msg); ce != nil {
		ce.Write()
	}
	return len(p), nil
}

// maxKindLen bounds a line's kind, the rate limiter's key.
const maxKindLen = 48

// lineKind is what identifies a memberlist line without its variable
// parts: the message up to its first digit, colon, parenthesis or quote,
// which is where memberlist puts addresses, sizes and peer names.
func lineKind(msg string) string {
	if i := strings.IndexAny(msg, "0123456789:('\""); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > maxKindLen {
		msg = msg[:maxKindLen]
	}
	return msg
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
