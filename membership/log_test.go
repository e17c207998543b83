package membership

import (
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestParseLogLine(t *testing.T) {
	cases := []struct {
		line string
		lvl  zapcore.Level
		msg  string
	}{
		{"[DEBUG] memberlist: Stream connection from=1.2.3.4:5\n", zapcore.DebugLevel, "Stream connection from=1.2.3.4:5"},
		{"[INFO] memberlist: Marking b as failed\n", zapcore.InfoLevel, "Marking b as failed"},
		{"[WARN] memberlist: Refuting a suspect message (from: a)\n", zapcore.WarnLevel, "Refuting a suspect message (from: a)"},
		{"[ERR] memberlist: Failed fallback TCP ping: x\n", zapcore.ErrorLevel, "Failed fallback TCP ping: x"},
		{"[ERROR] memberlist: Failed to encrypt local state: x\n", zapcore.ErrorLevel, "Failed to encrypt local state: x"},
		{"[ERR] Failed to shutdown transport: x\n", zapcore.ErrorLevel, "Failed to shutdown transport: x"},
		{"Err: Could not set the deadline: x\n", zapcore.ErrorLevel, "Err: Could not set the deadline: x"},
		{"plain line", zapcore.InfoLevel, "plain line"},
		{"", zapcore.InfoLevel, ""},
	}
	for _, tc := range cases {
		lvl, msg := parseLogLine(tc.line)
		if lvl != tc.lvl || msg != tc.msg {
			t.Errorf("parseLogLine(%q) = %v %q, want %v %q", tc.line, lvl, msg, tc.lvl, tc.msg)
		}
	}
}

func TestMemberlistLoggerForwardsToZap(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := newMemberlistLogger(zap.New(core).Named("svc"), new(atomic.Uint64))
	l.Printf("[DEBUG] memberlist: hidden %d", 1)
	l.Printf("[WARN] memberlist: shown %d", 2)
	l.Printf("[ERR] memberlist: also shown")
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("got %d entries, want 2 (debug filtered)", len(all))
	}
	if all[0].Level != zapcore.WarnLevel || all[0].Message != "shown 2" || all[0].LoggerName != "svc.memberlist" {
		t.Errorf("entry 0 = %+v", all[0].Entry)
	}
	if all[1].Level != zapcore.ErrorLevel || all[1].Message != "also shown" {
		t.Errorf("entry 1 = %+v", all[1].Entry)
	}
}
