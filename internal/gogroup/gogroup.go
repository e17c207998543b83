// Package gogroup starts goroutines that a Close must wait for.
package gogroup

import "sync"

// Group runs goroutines and waits for them. After Stop, Go refuses to
// start new ones, so no goroutine can be born after a Close returned. The
// zero value is ready to use.
type Group struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	stopped bool
}

// Go starts f in a goroutine and reports whether it did.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Stop makes every later Go refuse. It does not wait.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

// Wait blocks until every goroutine started by Go has returned.
func (g *Group) Wait() { g.wg.Wait() }
