package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"time"
)

func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// writeLatencies stores latencies (ns) as little-endian int64s.
func writeLatencies(path string, lats []int64) error {
	b := make([]byte, 8*len(lats))
	for i, l := range lats {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(l))
	}
	return os.WriteFile(path, b, 0o600)
}

// readLatencies appends the latencies stored at path to dst.
func readLatencies(dst []int64, path string) ([]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return dst, err
	}
	if len(b)%8 != 0 {
		return dst, fmt.Errorf("%s: %d bytes is not a whole number of samples", path, len(b))
	}
	for i := 0; i < len(b); i += 8 {
		dst = append(dst, int64(leUint64(b[i:])))
	}
	return dst, nil
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted; zero for no samples.
func percentile(sorted []int64, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return time.Duration(sorted[max(0, min(i, len(sorted)-1))])
}

// latencySummary is the p50 and p99 of one run's merged samples.
type latencySummary struct {
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	N   int           `json:"n"`
}

func summarize(lats []int64) latencySummary {
	slices.Sort(lats)
	return latencySummary{P50: percentile(lats, 50), P99: percentile(lats, 99), N: len(lats)}
}
