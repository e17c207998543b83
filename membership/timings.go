package membership

import (
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/memberlist"
)

// Timings are the failure-detection timings of a profile for a cluster of
// a given size, computed from memberlist's configuration with memberlist's
// own formulas (memberlist v0.7.0).
type Timings struct {
	// ProbeInterval is how often each node probes one other member.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack before trying
	// indirect and TCP probes.
	ProbeTimeout time.Duration
	// GossipInterval is how often queued gossip is sent.
	GossipInterval time.Duration
	// PushPullInterval is how often a full state sync runs.
	PushPullInterval time.Duration
	// TCPTimeout bounds one stream connection (a join attempt to one seed,
	// a push/pull sync).
	TCPTimeout time.Duration

	// SuspicionTimeout is how long a suspected member stays suspect before
	// it is declared failed once enough peers confirm the suspicion:
	// SuspicionMult × max(1, log10(N)) × ProbeInterval.
	SuspicionTimeout time.Duration
	// SuspicionMaxTimeout is the suspicion time without confirmations:
	// SuspicionMaxTimeoutMult × SuspicionTimeout. With fewer than
	// SuspicionMult live peers no confirmations are expected and
	// SuspicionTimeout applies.
	SuspicionMaxTimeout time.Duration

	// DetectionTypical is how long after a crash peers usually report
	// EventFailed: two probe intervals plus SuspicionTimeout.
	DetectionTypical time.Duration
	// DetectionMax bounds that time on a healthy cluster: N probe
	// intervals (a full probe round) plus one more, plus
	// SuspicionMaxTimeout. Degraded nodes stretch their probe interval by
	// up to 8×, so it is not a hard bound.
	DetectionMax time.Duration
}

// ProfileTimings returns the timings of profile ("" means ProfileLAN) for
// a cluster of clusterSize members (values below 1 count as 1). Callers
// waiting to observe a failure should allow DetectionMax. An unknown
// profile is an error wrapping ErrInvalidConfig.
func ProfileTimings(profile string, clusterSize int) (Timings, error) {
	mc, err := profileConfig(profile)
	if err != nil {
		return Timings{}, fmt.Errorf("%w: Profile: %v", ErrInvalidConfig, err)
	}
	return timingsOf(mc, clusterSize), nil
}

// timingsOf computes Timings from a memberlist configuration.
func timingsOf(mc *memberlist.Config, n int) Timings {
	n = max(n, 1)
	// Same arithmetic as memberlist's suspicionTimeout (util.go).
	scale := math.Max(1, math.Log10(float64(n)))
	susp := time.Duration(mc.SuspicionMult) * time.Duration(scale*1000) * mc.ProbeInterval / 1000
	suspMax := time.Duration(mc.SuspicionMaxTimeoutMult) * susp
	return Timings{
		ProbeInterval:       mc.ProbeInterval,
		ProbeTimeout:        mc.ProbeTimeout,
		GossipInterval:      mc.GossipInterval,
		PushPullInterval:    mc.PushPullInterval,
		TCPTimeout:          mc.TCPTimeout,
		SuspicionTimeout:    susp,
		SuspicionMaxTimeout: suspMax,
		DetectionTypical:    2*mc.ProbeInterval + susp,
		DetectionMax:        time.Duration(n+1)*mc.ProbeInterval + suspMax,
	}
}

// localRetransmitMult replaces DefaultLocalConfig's RetransmitMult of 2.
// With 2, a gossiped join, update or leave is sent to only two peers per
// hop, and in clusters of four or more some member regularly misses it
// until the next push/pull sync (15 s later). Loopback bandwidth is free,
// so the local profile uses the LAN value.
const localRetransmitMult = 4

// profileConfig returns memberlist's preset for profile ("" means
// ProfileLAN), with RetransmitMult raised for ProfileLocal.
func profileConfig(profile string) (*memberlist.Config, error) {
	switch profile {
	case ProfileLocal:
		c := memberlist.DefaultLocalConfig()
		c.RetransmitMult = localRetransmitMult
		return c, nil
	case ProfileLAN, "":
		return memberlist.DefaultLANConfig(), nil
	case ProfileWAN:
		return memberlist.DefaultWANConfig(), nil
	}
	return nil, fmt.Errorf("%q is not %q, %q or %q", profile, ProfileLocal, ProfileLAN, ProfileWAN)
}
