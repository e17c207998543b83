// Package cli holds what syncpub and syncsub share: settings declared as
// one struct per command and resolved from flags, the environment and a
// YAML file (viper), logging (zap), exit codes, version, progress lines
// and signal handling. Packages outside cmd/ never see viper.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes, the same for both commands. ExitCode documents what each
// means for one command.
const (
	ExitOK            = 0   // the job fully succeeded
	ExitFailed        = 1   // the job ran but failed
	ExitUsage         = 2   // bad flags or configuration
	ExitQuorumFailed  = 3   // the quorum was not reached in time (policy fail)
	ExitPublisherGone = 4   // a subscriber's publisher disappeared
	ExitUnreachable   = 5   // no publisher joined within the subscriber's --connect-timeout
	ExitInterrupted   = 130 // SIGINT or SIGTERM before the job completed
)

// ExitCode is one exit code and what it means for a command.
type ExitCode struct {
	Code    int
	Meaning string
}

// FormatExitCodes renders codes as an aligned block for --help.
func FormatExitCodes(codes []ExitCode) string {
	var b strings.Builder
	b.WriteString("Exit codes:\n")
	for _, c := range codes {
		fmt.Fprintf(&b, "  %3d  %s\n", c.Code, c.Meaning)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// UsageError is a configuration problem; Exit exits with ExitUsage. Err
// may join several problems, one per line.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitError makes Exit use Code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exitf returns an ExitError with code.
func Exitf(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// CodeOf returns the exit code for err: ExitOK for nil, ExitUsage for a
// UsageError, an ExitError's Code, and ExitFailed otherwise.
func CodeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitFailed
}

// Report writes err to w, each of its lines prefixed by "name: ", and
// returns the exit code. Nothing is written for nil.
func Report(w io.Writer, name string, err error) int {
	if err == nil {
		return ExitOK
	}
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		fmt.Fprintf(w, "%s: %s\n", name, line)
	}
	return CodeOf(err)
}

// Exit reports err on stderr and exits with its code.
func Exit(name string, err error) {
	os.Exit(Report(os.Stderr, name, err))
}

// SplitLines makes one error per line of err, for a library's joined
// validation errors.
func SplitLines(err error) []error {
	var out []error
	for _, l := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, errors.New(l))
		}
	}
	return out
}
