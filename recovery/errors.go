package recovery

import (
	"errors"
)

// History errors. Append returns them wrapped with detail.
var (
	// ErrOutOfOrder means Append got a sequence that is 0 or not above the
	// last one appended to the topic. The history is unchanged.
	ErrOutOfOrder = errors.New("recovery: sequence not increasing")
	// ErrTooLarge means a payload is larger than the per-topic byte limit
	// (or 4 GiB) and cannot be retained.
	ErrTooLarge = errors.New("recovery: payload too large to retain")
	// ErrClosed means the History was closed.
	ErrClosed = errors.New("recovery: history closed")
)

// ErrConfig is wrapped by every error a Config's Validate or a constructor
// returns for an invalid configuration or argument.
var ErrConfig = errors.New("recovery: invalid config")
