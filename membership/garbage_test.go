package membership

import (
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestGossipGarbageRateLimited: 1,000 garbage UDP packets and 100
// garbage TCP streams on a node's gossip port. memberlist complains
// about each; the node counts every complaint (Stats.Warnings) and
// writes one line per kind per 10 s. It keeps gossiping: a peer that
// joins afterwards is a member.
func TestGossipGarbageRateLimited(t *testing.T) {
	const packets, streams = 1000, 100
	core, logs := observer.New(zapcore.WarnLevel)
	cfg := testConfig(t, "target", RoleSubscriber)
	cfg.Logger = zap.New(core)
	n := startNode(t, cfg)

	udp, err := net.Dial("udp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	garbage := [][]byte{
		{0xff},                           // too short
		{0x7f, 1, 2, 3, 4, 5, 6, 7, 8},   // unknown message type
		{0x00, 0xde, 0xad, 0xbe, 0xef},   // a ping that does not decode
		[]byte("GET / HTTP/1.1\r\n\r\n"), // not memberlist at all
	}
	for i := 0; i < packets; i++ {
		if _, err := udp.Write(garbage[i%len(garbage)]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < streams; i++ {
		c, err := net.DialTimeout("tcp", n.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(garbage[i%len(garbage)])
		c.Close()
	}
	// UDP may drop some on a busy machine; TCP streams all arrive.
	waitFor(t, 10*time.Second, "the complaints", func() bool { return n.Stats().Warnings >= streams })

	peer := startNode(t, testConfig(t, "peer", RolePublisher))
	joinTo(t, peer, n)
	waitFor(t, 10*time.Second, "the peer as a member", func() bool { return len(n.Members()) == 2 })

	st := n.Stats()
	kinds := map[string]int{}
	for _, e := range logs.All() {
		if e.LoggerName == "memberlist" {
			kinds[lineKind(e.Message)]++
		}
	}
	t.Logf("%d complaints counted, %d lines written: %v", st.Warnings, logs.Len(), kinds)
	for kind, k := range kinds {
		if k > 1 {
			t.Errorf("%d lines of kind %q in well under 10 s, want 1", k, kind)
		}
	}
	if uint64(logs.Len()) >= st.Warnings/10 {
		t.Errorf("%d lines for %d complaints: not rate-limited", logs.Len(), st.Warnings)
	}
}

func TestLineKind(t *testing.T) {
	for msg, want := range map[string]string{
		"UDP packet too short (1 bytes) from=127.0.0.1:4000":            "UDP packet too short",
		"failed to receive: Unknown message type: 71 from=127.0.0.1:80": "failed to receive",
		"message type (127) not supported from=127.0.0.1:5":             "message type",
		"Got ping for unexpected node 'x' from=127.0.0.1:1":             "Got ping for unexpected node",
		"": "",
	} {
		if got := lineKind(msg); got != want {
			t.Errorf("lineKind(%q) = %q, want %q", msg, got, want)
		}
	}
}
