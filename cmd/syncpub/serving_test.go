package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"github.com/syncmq/syncmq/cmd/internal/settings"
	"github.com/syncmq/syncmq/coord"
)

// TestServingSettingsReachBothPublishers: every setting syncpub and the
// relay share reaches the configuration each serves its subscribers
// with, the same way: a limit on what a peer can make the process hold
// guards the relay's ports as it guards syncpub's.
func TestServingSettingsReachBothPublishers(t *testing.T) {
	s := settings.DefaultServing()
	s.Bind, s.SyncBind, s.RecoveryBind = "tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002", "tcp://127.0.0.1:7003"
	s.HistoryMessages, s.HistoryBytes, s.HistoryTopic = 5000, 32<<20, 1<<20
	s.DataDir, s.Fsync, s.FsyncInterval, s.DataBytes, s.RetentionAge = t.TempDir(), "always", 50*time.Millisecond, 256<<20, time.Hour
	s.RepairWindow, s.RecoveryRate, s.RecoveryHost = 7*time.Second, 8<<20, 2<<20
	s.MaxSubscribers, s.MaxSubsPerIP, s.ConnsPerIP, s.HandshakesPerIP = 100, 10, 12, 3
	s.MaxSubBytes, s.SubBudget, s.JoinTimeout = 16<<10, 1<<20, 3*time.Second
	s.Expect, s.QuorumTimeout, s.QuorumPolicy, s.DrainTimeout = 4, time.Minute, "proceed", 9*time.Second
	s.Heartbeat, s.SlowTimeout, s.SlowPolicy, s.LingerAfterEnd = 300*time.Millisecond, 2*time.Second, "wait", 4*time.Second
	s.QueueBytes, s.MaxQueueBytes = 1<<20, 8<<20

	pubSettings := settings.DefaultPublisher()
	pubSettings.Serving = s
	pub, err := buildOptions(pubSettings, nil)
	if err != nil {
		t.Fatal(err)
	}
	relaySettings := settings.DefaultRelay()
	relaySettings.Serving = s
	rel, err := buildRelayOptions(relaySettings)
	if err != nil {
		t.Fatal(err)
	}

	got := rel.cfg.Downstream
	if got.Wire.MaxConnsPerIP != 12 || got.SlowPolicy != coord.SlowWait || got.Journal.Retention.MaxAge != time.Hour || got.RecoveryLimit.HostBytesRate != 2<<20 {
		t.Errorf("relay: conns per ip %d, slow policy %v, retention age %v, host replay rate %v", got.Wire.MaxConnsPerIP, got.SlowPolicy, got.Journal.Retention.MaxAge, got.RecoveryLimit.HostBytesRate)
	}
	want := pub.pub
	// What only syncpub has: its own id, what and how it publishes, gossip.
	want.ID, want.Topics, want.MaxTopics, want.MaxBatchRecords, want.Linger = got.ID, got.Topics, got.MaxTopics, got.MaxBatchRecords, got.Linger
	want.Gossip, want.Quorum, want.Settle, want.QuorumLost = got.Gossip, got.Quorum, got.Settle, got.QuorumLost
	if !reflect.DeepEqual(want, got) {
		t.Errorf("syncpub and the relay serve with different configurations from the same settings:\nsyncpub %+v\nrelay   %+v", want, got)
	}
	if pub.drain != rel.cfg.DrainTimeout {
		t.Errorf("drain timeout: syncpub %v, relay %v", pub.drain, rel.cfg.DrainTimeout)
	}
}

// TestRelayRefusesWhatSyncpubRefuses: a shared setting out of range is
// refused by both, named by its flag.
func TestRelayRefusesWhatSyncpubRefuses(t *testing.T) {
	for name, bad := range map[string]func(*settings.Serving){
		"queue-bytes":      func(s *settings.Serving) { s.QueueBytes = 1 },
		"join-timeout":     func(s *settings.Serving) { s.JoinTimeout = time.Millisecond },
		"linger-after-end": func(s *settings.Serving) { s.LingerAfterEnd = -time.Second },
		"fsync-interval":   func(s *settings.Serving) { s.DataDir, s.FsyncInterval = t.TempDir(), time.Microsecond },
		"data-bytes":       func(s *settings.Serving) { s.DataDir, s.DataBytes = t.TempDir(), cli.Bytes(1) },
	} {
		p, r := settings.DefaultPublisher(), settings.DefaultRelay()
		bad(&p.Serving)
		bad(&r.Serving)
		if _, err := buildOptions(p, nil); err == nil || !containsFlag(err, name) {
			t.Errorf("syncpub %s: %v", name, err)
		}
		if _, err := buildRelayOptions(r); err == nil || !containsFlag(err, name) {
			t.Errorf("relay %s: %v", name, err)
		}
	}
}

// containsFlag reports whether err names flag as Checks does.
func containsFlag(err error, flag string) bool { return strings.Contains(err.Error(), flag+":") }
