package envelope_test

import (
	"testing"
	"time"

	"github.com/syncmq/syncmq/envelope"
)

func TestEpochAfter(t *testing.T) {
	const ns = uint64(1_795_588_380_568_209_895) // a 1.0 epoch: Unix nanoseconds
	us := envelope.EpochAt(time.Unix(0, int64(ns)).Add(time.Hour))
	for _, tc := range []struct {
		a, b uint64
		want bool
	}{
		{2, 1, true}, {1, 2, false}, {1, 1, false},
		{ns + 1, ns, true}, {ns, ns + 1, false},
		{us, ns, true}, // upgraded, restarted without a journal: the smaller number is later
		{ns, us, false},
		{envelope.MaxJSONEpoch, envelope.MaxJSONEpoch + 1, true},
	} {
		if got := envelope.EpochAfter(tc.a, tc.b); got != tc.want {
			t.Errorf("EpochAfter(%d, %d) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if us > envelope.MaxJSONEpoch || envelope.EpochAt(time.Date(2255, 1, 1, 0, 0, 0, 0, time.UTC)) > envelope.MaxJSONEpoch {
		t.Fatalf("microsecond epochs exceed 2^53-1 before 2255: %d", us)
	}
	if envelope.EpochAt(time.Unix(0, 0)) != 1 {
		t.Fatal("an epoch is never 0")
	}
}
