package coord

import (
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/wire"
)

// TestWireConstantsMatch: coord states the transport's floors and event
// types as its own constants (so go doc shows values, not internal
// names); they must stay the transport's.
func TestWireConstantsMatch(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"MinSlowTimeout", int64(MinSlowTimeout), int64(wire.MinSlowTimeout)},
		{"MinQueueBytes", MinQueueBytes, wire.MinQueueBytes},
		{"MinSubscriptionBytes", MinSubscriptionBytes, wire.MinSubscriptionBytes},
		{"MinReconnect", int64(MinReconnect), int64(wire.MinReconnect)},
		{"MinIdleTimeout", int64(MinIdleTimeout), int64(wire.MinIdleTimeout)},
		{"MinHandshakeTimeout", int64(MinHandshakeTimeout), int64(wire.MinHandshakeTimeout)},
		{"PeerConnected", int64(PeerConnected), int64(wire.PeerConnected)},
		{"PeerDisconnected", int64(PeerDisconnected), int64(wire.PeerDisconnected)},
		{"PeerSlow", int64(PeerSlow), int64(wire.PeerSlow)},
		{"PeerSubscribed", int64(PeerSubscribed), int64(wire.PeerSubscribed)},
	} {
		if c.got != c.want {
			t.Errorf("%s is %d, the transport's %d", c.name, c.got, c.want)
		}
	}
}

// TestWireConfigsMapEveryField: a PubWireConfig and a SubWireConfig with
// every field set arrive whole in the transport's configurations, and
// the defaults are the transport's.
func TestWireConfigsMapEveryField(t *testing.T) {
	var got PeerEvent
	p := PubWireConfig{QueueBytes: 1, MaxQueueBytes: 2, SendBuffer: 3, SlowTimeout: 4, HandshakeTimeout: 5,
		MaxPending: 6, MaxPendingPerIP: 7, MaxPeers: 8, MaxConnsPerIP: 9, MaxSubscriptions: 10,
		MaxSubscriptionBytes: 11, SubscriptionBudget: 12, OnEvent: func(ev PeerEvent) { got = ev }}
	w := p.internal()
	if w.QueueBytes != 1 || w.MaxQueueBytes != 2 || w.SendBuffer != 3 || w.SlowTimeout != 4 || w.HandshakeTimeout != 5 ||
		w.MaxPending != 6 || w.MaxPendingPerIP != 7 || w.MaxPeers != 8 || w.MaxConnsPerIP != 9 || w.MaxSubscriptions != 10 ||
		w.MaxSubscriptionBytes != 11 || w.SubscriptionBudget != 12 {
		t.Errorf("PubWireConfig %+v mapped to %+v", p, w)
	}
	w.OnEvent(wire.PeerEvent{Type: wire.PeerSubscribed, Conn: 42, Remote: "r", Identity: "i", Prefix: []byte("p"), Dropped: 3})
	if got.Type != PeerSubscribed || got.Conn != 42 || got.Remote != "r" || got.Identity != "i" || string(got.Prefix) != "p" || got.Dropped != 3 {
		t.Errorf("PeerEvent %+v", got)
	}
	if got.Type.String() != "subscribed" {
		t.Errorf("PeerSubscribed prints %q", got.Type)
	}
	s := SubWireConfig{ReconnectMin: 1, ReconnectMax: 2, HandshakeTimeout: 3, RecvQueue: 4, MaxFrame: 5, IdleTimeout: 6}
	ws := s.internal()
	if ws.ReconnectMin != 1 || ws.ReconnectMax != 2 || ws.HandshakeTimeout != 3 || ws.RecvQueue != 4 || ws.MaxFrame != 5 || ws.IdleTimeout != 6 {
		t.Errorf("SubWireConfig %+v mapped to %+v", s, ws)
	}
	if (SubWireConfig{IdleTimeout: -1}).internal().IdleTimeout != 0 {
		t.Error("a negative IdleTimeout must turn the transport's off")
	}
	if d := DefaultPubWireConfig().internal(); d.QueueBytes != wire.DefaultPubConfig().QueueBytes || d.SubscriptionBudget != wire.DefaultPubConfig().SubscriptionBudget {
		t.Errorf("defaults %+v", d)
	}
	err := PubWireConfig{SlowTimeout: time.Nanosecond, QueueBytes: -1}.Validate()
	if err == nil || strings.Contains(err.Error(), "PubConfig.") || !strings.Contains(err.Error(), "PubWireConfig.SlowTimeout 1ns is below 100ms") {
		t.Errorf("Validate: %v", err)
	}
}
