package coord

import (
	"errors"
	"fmt"
)

// releaseStepHook, when set, is called with a step's name before the
// step runs. Tests set it to make one step panic or fail and show that
// every other step still runs; it is nil otherwise.
var releaseStepHook func(step string) error

// releaseSteps runs the steps that stop a Publisher or a Subscriber, in
// order, each on its own: a step that fails or panics is recorded and the
// next one runs anyway, so that one broken step never leaves an endpoint
// open, a caller blocked or a goroutine running.
type releaseSteps struct {
	errs []error
}

// do runs one step and records its failure or its panic.
func (r *releaseSteps) do(name string, step func() error) {
	defer func() {
		if v := recover(); v != nil {
			r.errs = append(r.errs, &StepPanicError{Step: name, Value: v})
		}
	}()
	if h := releaseStepHook; h != nil {
		if err := h(name); err != nil {
			r.errs = append(r.errs, fmt.Errorf("coord: %s: %w", name, err))
			return
		}
	}
	if err := step(); err != nil {
		r.errs = append(r.errs, fmt.Errorf("coord: %s: %w", name, err))
	}
}

// err is every failure and panic of the steps run so far, nil for none.
func (r *releaseSteps) err() error { return errors.Join(r.errs...) }

// StepPanicError reports a step of Shutdown or Close that panicked. The
// step was abandoned; every other step ran.
type StepPanicError struct {
	Step  string // what the step was doing, e.g. "close the sync endpoint"
	Value any    // what it panicked with
}

func (e *StepPanicError) Error() string {
	return fmt.Sprintf("coord: %s panicked: %v", e.Step, e.Value)
}
