package main

import (
	"errors"
	"fmt"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/coord"
)

// Outcomes, as the summary names them (coord.Outcome's values).
const (
	outcomeOK            = string(coord.OutcomeOK)
	outcomeLost          = string(coord.OutcomeLost)
	outcomeInterrupted   = string(coord.OutcomeInterrupted)
	outcomeQuorumFailed  = string(coord.OutcomeQuorumFailed)
	outcomePublisherGone = string(coord.OutcomePublisherGone)
	outcomeUnreachable   = string(coord.OutcomeUnreachable)
)

// verdict is how a run ended: the outcome, the exit code and, for a
// failure, the reason printed on stderr.
type verdict struct {
	outcome string
	code    int
	reason  string
}

// exitCodes maps the library's outcomes to syncsub's exit codes
// (docs/runbook.md).
var exitCodes = map[coord.Outcome]int{
	coord.OutcomeOK:            cli.ExitOK,
	coord.OutcomeLost:          cli.ExitFailed,
	coord.OutcomeQuorumFailed:  cli.ExitQuorumFailed,
	coord.OutcomePublisherGone: cli.ExitPublisherGone,
	coord.OutcomeInterrupted:   cli.ExitInterrupted,
	coord.OutcomeUnreachable:   cli.ExitUnreachable,
}

// judge turns the Subscriber's result (Err after Close) into the verdict.
func judge(err error) verdict {
	if err == nil {
		return verdict{outcome: outcomeOK, code: cli.ExitOK}
	}
	var je *coord.JobError
	if !errors.As(err, &je) {
		return verdict{outcome: outcomeInterrupted, code: cli.ExitInterrupted, reason: err.Error()}
	}
	v := verdict{outcome: string(je.Outcome), code: exitCodes[je.Outcome], reason: je.Reason}
	if je.Outcome == coord.OutcomeLost {
		v.reason += "; run 'syncsub diagnose' and see docs/runbook.md"
	}
	return v
}

// err returns the error main exits with, nil for success.
func (v verdict) err() error {
	if v.code == cli.ExitOK {
		return nil
	}
	return &cli.ExitError{Code: v.code, Err: fmt.Errorf("%s", v.reason)}
}
