package journal_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(appendUntilKilled(dir))
	}
	if dir := os.Getenv(openChildEnv); dir != "" {
		os.Exit(openAndReport(dir))
	}
	goleak.VerifyTestMain(m)
}
