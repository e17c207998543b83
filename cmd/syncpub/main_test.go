package main

import (
	"context"
	"testing"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestJudge: a signal is a clean stop when what was published drained; a
// drain that failed is exit 1, or 130 after a signal.
func TestJudge(t *testing.T) {
	tests := []struct {
		drainErr    error
		interrupted bool
		outcome     string
		code        int
	}{
		{nil, false, outcomeOK, cli.ExitOK},
		{nil, true, outcomeStopped, cli.ExitOK},
		{context.DeadlineExceeded, false, outcomeDrainFailed, cli.ExitFailed},
		{context.Canceled, true, outcomeInterrupted, cli.ExitInterrupted},
	}
	for _, tt := range tests {
		outcome, err := judge(10, tt.drainErr, tt.interrupted, time.Second)
		if outcome != tt.outcome || cli.CodeOf(err) != tt.code {
			t.Errorf("drain %v, interrupted %v: got %s (%d), want %s (%d)", tt.drainErr, tt.interrupted, outcome, cli.CodeOf(err), tt.outcome, tt.code)
		}
	}
}
