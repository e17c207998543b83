package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// ErrInterrupted is the cause of a Signals context cancelled by SIGINT or
// SIGTERM.
var ErrInterrupted = errors.New("interrupted")

// Signals watches for SIGINT and SIGTERM. Stop is cancelled by the first
// (the command winds down: stops taking work, drains), Abort by the
// second (the command gives up draining). Both are also cancelled when
// parent ends or Close is called.
type Signals struct {
	Stop, Abort context.Context
	cancel      context.CancelCauseFunc
	ch          chan os.Signal
	done        chan struct{}
}

// WatchSignals starts watching; Close stops it.
func WatchSignals(parent context.Context) *Signals {
	abort, cancelAbort := context.WithCancelCause(parent)
	stop, cancelStop := context.WithCancelCause(abort)
	s := &Signals{Stop: stop, Abort: abort, cancel: cancelAbort, ch: make(chan os.Signal, 2), done: make(chan struct{})}
	signal.Notify(s.ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer close(s.done)
		for n := 0; ; n++ {
			select {
			case <-s.ch:
			case <-abort.Done():
				return
			}
			if n == 0 {
				cancelStop(ErrInterrupted)
			} else {
				cancelAbort(ErrInterrupted)
				return
			}
		}
	}()
	return s
}

// Interrupted reports whether a signal arrived.
func (s *Signals) Interrupted() bool {
	return errors.Is(context.Cause(s.Stop), ErrInterrupted)
}

// Close stops watching and waits for the watcher. Idempotent.
func (s *Signals) Close() {
	signal.Stop(s.ch)
	s.cancel(context.Canceled)
	<-s.done
}
