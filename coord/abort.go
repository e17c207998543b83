package coord

// Abort stops the publisher at once, the way a crash would: connections
// are dropped, nothing queued is sent, no END goes out, the recovery
// endpoint closes, and gossip stops without a leave. Subscribers see a disconnect and, when the publisher
// comes back, a new epoch. It waits for every goroutine and is
// idempotent; Close after Abort (or Abort after Close) does nothing more.
func (p *Publisher) Abort() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		p.pub.Close() // first, so the sender cannot hand anything more to a subscriber
		close(p.stop)
		p.g.Stop()
		p.g.Wait()
		if p.rec != nil {
			p.rec.close()
		}
		p.sync.Close()
		if p.cluster != nil {
			p.cluster.shutdown() // no leave: peers see a failure, as after a crash
		}
		p.closeErr = ErrClosed
	})
}
