//go:build !race

package coord

// raceEnabled reports whether the race detector is on: it slows
// everything several times, so wall-clock bounds are checked only without it.
const raceEnabled = false
