package coord

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var errInjected = errors.New("injected step failure")

// publisherSteps are the steps of a Publisher's Shutdown and Close, by the
// names release_steps.go gives them.
var publisherSteps = []string{
	"refuse new records",
	"wait for the end of the epoch",
	"end the run goroutine",
	"close the PUB socket",
	"stop the publisher's goroutines",
	"close the recovery endpoint",
	"close the retained store",
	"drain the sync endpoint",
	"close the sync endpoint",
	"leave the gossip cluster",
	"close what an earlier step left open",
}

// subscriberSteps are the steps of a Subscriber's Close.
var subscriberSteps = []string{
	"stop gossip",
	"cancel the subscriber's work",
	"stop the subscriber's goroutines",
	"count what was received",
	"end the job",
	"write the checkpoints",
	"close the checkpoints",
	"close the SUB socket",
	"close the publisher links",
	"wait for the subscriber's goroutines",
}

// breakStep makes the step named step panic or fail (fault "panic" or
// "fail") until the test ends, and returns how often it was reached.
func breakStep(t *testing.T, step, fault string) *atomic.Int32 {
	t.Helper()
	var hits atomic.Int32
	releaseStepHook = func(name string) error {
		if name != step {
			return nil
		}
		hits.Add(1)
		if fault == "panic" {
			panic("injected panic in " + name)
		}
		return errInjected
	}
	t.Cleanup(func() { releaseStepHook = nil })
	return &hits
}

// checkBroken asserts err reports the broken step: as a *StepPanicError
// naming it, or as the injected failure.
func checkBroken(t *testing.T, err error, step, fault string) {
	t.Helper()
	if fault == "panic" {
		var pe *StepPanicError
		if !errors.As(err, &pe) || pe.Step != step {
			t.Fatalf("got %v, want a *StepPanicError for %q", err, step)
		}
		return
	}
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), step) {
		t.Fatalf("got %v, want the injected failure of %q", err, step)
	}
}

// refused asserts nothing accepts a TCP connection at endpoint any more.
func refused(t *testing.T, what, endpoint string) {
	t.Helper()
	addr := strings.TrimPrefix(endpoint, "tcp://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("the %s endpoint %s still accepts connections", what, addr)
	}
}

// TestPublisherReleasesEverythingWhenAStepBreaks: whichever step of
// Shutdown or Close panics or fails, the call returns (the panic as a
// *StepPanicError, not as a panic), every blocked WaitQuorum and Publish
// returns, the sync and recovery endpoints refuse new connections, a
// second call returns the same result, and no goroutine is left.
func TestPublisherReleasesEverythingWhenAStepBreaks(t *testing.T) {
	for _, how := range []string{"Shutdown", "Close"} {
		for _, fault := range []string{"panic", "fail"} {
			for _, step := range publisherSteps {
				if how == "Close" && step == "wait for the end of the epoch" {
					continue // Close does not wait
				}
				t.Run(how+"/"+fault+"/"+step, func(t *testing.T) {
					publisherStepBreaks(t, how, fault, step)
				})
			}
		}
	}
}

func publisherStepBreaks(t *testing.T, how, fault, step string) {
	before := goleak.IgnoreCurrent()
	cfg := loopbackConfig()
	cfg.Expect = 2 // never reached: WaitQuorum and Publish block
	cfg.QuorumTimeout = time.Hour
	cfg.DataDir = t.TempDir() // the retained store is the journal
	pub, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	syncEP, recEP := pub.SyncEndpoint(), pub.RecoveryEndpoint()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const calls = 3
	blocked := make(chan error, calls)
	go func() { blocked <- pub.WaitQuorum(ctx) }()
	go func() {
		_, err := pub.Publish(ctx, "t", []byte("x"))
		blocked <- err
	}()
	go func() { blocked <- pub.PublishSeq(ctx, "u", 1, []byte("x")) }() // a relay's, waiting as Publish does
	waitFor(t, func() bool { return blockedPublishers(pub) == 2 }, "Publish and PublishSeq blocked before the quorum")

	hits := breakStep(t, step, fault)
	var got error
	if how == "Shutdown" {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		got = pub.Shutdown(sctx)
		scancel()
	} else {
		got = pub.Close()
	}
	if hits.Load() == 0 {
		t.Fatalf("%s never reached the step %q", how, step)
	}
	checkBroken(t, got, step, fault)
	for i := 0; i < calls; i++ {
		select {
		case err := <-blocked:
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("a blocked call returned %v, want it released with an error", err)
			}
		case <-ctx.Done():
			t.Fatalf("%d blocked calls still blocked after %s", calls-i, how)
		}
	}
	refused(t, "sync", syncEP)
	refused(t, "recovery", recEP)
	again := pub.Shutdown(ctx)
	if how == "Shutdown" && again != got {
		t.Errorf("a second Shutdown returned %v, want the first's %v", again, got)
	}
	_ = pub.Close() // returns, after whatever broke
	releaseStepHook = nil
	goleak.VerifyNone(t, append([]goleak.Option{before}, leakOpts...)...)
}

// TestSubscriberReleasesEverythingWhenAStepBreaks: whichever step of a
// Subscriber's Close panics or fails, Close returns it (a panic as a
// *StepPanicError), WaitReady and Done release their callers, and no
// goroutine is left.
func TestSubscriberReleasesEverythingWhenAStepBreaks(t *testing.T) {
	for _, fault := range []string{"panic", "fail"} {
		for _, step := range subscriberSteps {
			t.Run(fault+"/"+step, func(t *testing.T) {
				subscriberStepBreaks(t, fault, step)
			})
		}
	}
}

func subscriberStepBreaks(t *testing.T, fault, step string) {
	before := goleak.IgnoreCurrent()
	// A publisher that never answers: the subscriber keeps trying, and
	// WaitReady blocks.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ep := "tcp://" + ln.Addr().String()
	sub, err := NewSubscriber(SubscriberConfig{Connect: ep, Sync: ep, StateDir: t.TempDir(),
		ConnectTimeout: time.Hour, Handler: func(Event) {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- sub.WaitReady(ctx) }()

	hits := breakStep(t, step, fault)
	got := sub.Close()
	if hits.Load() == 0 {
		t.Fatalf("Close never reached the step %q", step)
	}
	checkBroken(t, got, step, fault)
	select {
	case err := <-ready:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitReady returned %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("WaitReady still blocked after Close")
	}
	select {
	case <-sub.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after Close")
	}
	if again := sub.Close(); again != got {
		t.Errorf("a second Close returned %v, want the first's %v", again, got)
	}
	releaseStepHook = nil
	goleak.VerifyNone(t, append([]goleak.Option{before}, leakOpts...)...)
}
