package wire

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestProbe: Probe finds a listener on each scheme over that scheme's
// own transport, and reports an error where nothing listens.
func TestProbe(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ep := range []string{
		"tcp://127.0.0.1:0",
		"ipc://" + filepath.Join(dir, "probe.sock"),
		fmt.Sprintf("inproc://probe-%d", time.Now().UnixNano()),
	} {
		p, err := Listen(ep, PubConfig{})
		if err != nil {
			t.Fatal(err)
		}
		bound := p.Endpoint()
		if err := Probe(ctx, bound); err != nil {
			t.Errorf("%s with a listener: %v", bound, err)
		}
		p.Close()
		if err := Probe(ctx, bound); err == nil {
			t.Errorf("%s after Close: no error", bound)
		}
	}
	if err := Probe(ctx, "udp://127.0.0.1:1"); err == nil {
		t.Error("udp:// accepted")
	}
}
