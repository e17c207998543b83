package membership

import (
	"errors"
	"testing"
	"time"
)

func TestProfileTimings(t *testing.T) {
	cases := []struct {
		profile        string
		n              int
		probe, susp    time.Duration
		suspMax, dmax  time.Duration
		typical        time.Duration
		retransmitMult int
	}{
		{ProfileLocal, 3, time.Second, 3 * time.Second, 18 * time.Second, 22 * time.Second, 5 * time.Second, 4},
		{ProfileLocal, 100, time.Second, 6 * time.Second, 36 * time.Second, 137 * time.Second, 8 * time.Second, 4},
		{ProfileLAN, 0, time.Second, 4 * time.Second, 24 * time.Second, 26 * time.Second, 6 * time.Second, 4},
		{"", 5, time.Second, 4 * time.Second, 24 * time.Second, 30 * time.Second, 6 * time.Second, 4},
		{ProfileWAN, 5, 5 * time.Second, 30 * time.Second, 180 * time.Second, 210 * time.Second, 40 * time.Second, 4},
	}
	for _, tc := range cases {
		got, err := ProfileTimings(tc.profile, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if got.ProbeInterval != tc.probe || got.SuspicionTimeout != tc.susp || got.SuspicionMaxTimeout != tc.suspMax ||
			got.DetectionMax != tc.dmax || got.DetectionTypical != tc.typical {
			t.Errorf("ProfileTimings(%q, %d) = %+v", tc.profile, tc.n, got)
		}
		mc, _ := profileConfig(tc.profile)
		if mc.RetransmitMult != tc.retransmitMult {
			t.Errorf("%q RetransmitMult = %d", tc.profile, mc.RetransmitMult)
		}
	}
	if _, err := ProfileTimings("fast", 3); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("unknown profile: %v", err)
	}
}
