package coord

import (
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/mutation"
)

// TestSimulationMutations shows the checker has teeth: with each planted
// bug of package mutation active, some seed among the CI seeds fails.
// Planted bugs exist only in a build with the simmutation tag:
//
//	go test -tags simmutation -run TestSimulationMutations ./coord/
func TestSimulationMutations(t *testing.T) {
	if !mutation.Enabled {
		t.Skip("build with -tags simmutation to plant the bugs")
	}
	for _, k := range mutation.Kinds {
		t.Run(k.String(), func(t *testing.T) {
			restore := mutation.Set(k)
			defer restore()
			start := time.Now()
			const chunk = 50
			for from := 1; from <= simCISeeds; from += chunk {
				seeds := make([]uint64, 0, chunk)
				for s := from; s < from+chunk && s <= simCISeeds; s++ {
					seeds = append(seeds, uint64(s))
				}
				if failed, _ := runSeeds(seeds, k); len(failed) > 0 {
					t.Logf("%s caught by seed %d after %v (%d of the first %d seeds failed):\n%v",
						k, failed[0].seed, time.Since(start).Round(time.Millisecond), len(failed), from+len(seeds)-1, failed[0].err)
					return
				}
			}
			t.Errorf("%s: no seed of %d caught it", k, simCISeeds)
		})
	}
}
