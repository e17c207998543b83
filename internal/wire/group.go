package wire

import "sync"

// group runs goroutines that Close must wait for. After stop, go refuses to
// start new ones, so a goroutine can never be born after Close returned.
type group struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	stopped bool
}

// run starts f in a goroutine and reports whether it did.
func (g *group) run(f func()) bool {
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

// stop refuses further goroutines; wait then waits for the running ones.
func (g *group) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

func (g *group) wait() { g.wg.Wait() }
