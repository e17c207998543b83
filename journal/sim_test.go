package journal_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/syncmq/syncmq/internal/simdisk"
	"github.com/syncmq/syncmq/journal"
	"go.uber.org/goleak"
)

// clock is a simulated clock for Config.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time                    { return c.t }
func (c *clock) advance(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

// simConfig is a journal on disk d driven as a simulation drives it: its
// clock, no goroutine of its own.
func simConfig(d *simdisk.Disk, c *clock) journal.Config {
	cfg := testConfig()
	cfg.FS = d
	cfg.Now = c.now
	cfg.ManualTick = true
	return cfg
}

// TestManualTickStartsNoGoroutine: with ManualTick, a journal that syncs
// on an interval and applies a MaxAge runs no goroutine of its own.
func TestManualTickStartsNoGoroutine(t *testing.T) {
	before := goleak.IgnoreCurrent()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	cfg := simConfig(simdisk.New(), c)
	cfg.Retention.MaxAge = time.Hour
	j, err := journal.Open("/j", cfg)
	must(t, err)
	mustAppend(t, j, framesAt(1, "a", 1, 1, c.now().UnixNano()))
	must(t, j.Tick(c.advance(2*time.Second)))
	if err := goleak.Find(before); err != nil {
		t.Fatalf("the journal runs a goroutine: %v", err)
	}
	must(t, j.Close())
	if err := j.Tick(c.advance(time.Second)); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Tick after Close: %v", err)
	}
	if err := open(t, t.TempDir(), testConfig()).Tick(time.Now()); !errors.Is(err, journal.ErrConfig) {
		t.Fatalf("Tick without ManualTick: %v", err)
	}
}

// TestTickDoesTheBackgroundWork: Tick syncs the active segment once
// SyncInterval has passed, finishes sealed segments, and applies MaxAge
// with the time it is given; nothing of it happens between Ticks.
func TestTickDoesTheBackgroundWork(t *testing.T) {
	d := simdisk.New()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	cfg := simConfig(d, c)
	cfg.SegmentBytes = journal.MinSegmentBytes
	cfg.Retention.MaxAge = time.Hour
	j, err := journal.Open("/j", cfg)
	must(t, err)
	defer j.Close()

	mustAppend(t, j, framesAt(1, "a", 1, 1, c.now().UnixNano()))
	seg := "/j/0000000001.log"
	durable := func() int64 { b, _ := d.DurableFile(seg); return int64(len(b)) }
	written := func() int64 { b, _ := d.ReadFile(seg); return int64(len(b)) }
	must(t, j.Tick(c.advance(500*time.Millisecond)))
	if durable() != journal.SegHeaderSize || j.Stats().Syncs != 0 {
		t.Fatalf("synced before the interval: %d durable bytes, %+v", durable(), j.Stats())
	}
	must(t, j.Tick(c.advance(500*time.Millisecond)))
	if durable() != written() || j.Stats().Syncs != 1 {
		t.Fatalf("not synced after the interval: %d of %d bytes durable, %+v", durable(), written(), j.Stats())
	}

	// Fill the first segment: it is sealed but finished only by a Tick.
	var seq uint64 = 2
	for ; len(d.Paths()) < 7; seq++ { // ., /, /j, JOURNAL, LOCK, two segments
		mustAppend(t, j, framesAt(1, "a", seq, 1, c.now().UnixNano()))
	}
	if _, err := d.Stat("/j/0000000001.idx"); err == nil {
		t.Fatal("a sealed segment was snapshotted without a Tick")
	}
	must(t, j.Tick(c.now()))
	if _, err := d.Stat("/j/0000000001.idx"); err != nil {
		t.Fatalf("no snapshot after a Tick: %v", err)
	}
	if durable() != written() {
		t.Fatal("the sealed segment was not synced")
	}

	// MaxAge: everything ages out once the clock passed it, at a Tick.
	held := j.Stats().Batches
	c.advance(2 * time.Hour)
	if j.Stats().Batches != held {
		t.Fatal("aged out without a Tick")
	}
	must(t, j.Tick(c.now()))
	if st := j.Stats(); st.Batches != 0 || st.Evicted != uint64(held) {
		t.Fatalf("after the sweep: %+v", st)
	}
}

// TestPowerLoss runs a journal on the simulated disk, appending and
// ticking on a simulated clock, and cuts the power at a point the seed
// chooses, with torn writes and a random prefix of the unsynced
// directory changes surviving: after a reopen everything the sync mode
// promised is there, every record read is intact and in order, and the
// journal takes a new epoch. SyncNever promises nothing, but the
// directory must still open (its JOURNAL file is synced in every mode).
func TestPowerLoss(t *testing.T) {
	for _, mode := range []journal.SyncMode{journal.SyncAlways, journal.SyncInterval, journal.SyncNever} {
		for seed := uint64(1); seed <= 60; seed++ {
			t.Run(fmt.Sprintf("%v/%d", mode, seed), func(t *testing.T) { powerLoss(t, mode, seed) })
		}
	}
}

func powerLoss(t *testing.T, mode journal.SyncMode, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	d := simdisk.New()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	cfg := simConfig(d, c)
	cfg.Sync = mode
	cfg.SegmentBytes = journal.MinSegmentBytes
	topics := []string{"a", "bb"}
	j, err := journal.Open("/j", cfg)
	must(t, err)
	next := map[string]uint64{"a": 1, "bb": 1}
	promised := map[string]uint64{} // durable by the sync mode's promise
	lastSync := c.now()             // Open counts as a sync for Tick
	steps := 50 + rng.IntN(400)
	for range steps {
		if rng.IntN(8) == 0 {
			now := c.advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
			must(t, j.Tick(now))
			if mode == journal.SyncInterval && now.Sub(lastSync) >= journal.DefaultSyncInterval {
				// This Tick synced the sealed segments and the active one.
				lastSync = now
				for tp, n := range next {
					promised[tp] = n - 1
				}
			}
			continue
		}
		tp := topics[rng.IntN(len(topics))]
		count := 1 + rng.IntN(4)
		mustAppend(t, j, frames(1, tp, next[tp], count, rng.IntN(300)))
		next[tp] += uint64(count)
		if mode == journal.SyncAlways {
			promised[tp] = next[tp] - 1
		}
	}
	d.Crash(simdisk.RandomPowerLoss(rng))

	cfg.Logger = nil
	j2, err := journal.Open("/j", cfg)
	if err != nil {
		t.Fatalf("reopen after the power loss: %v", err)
	}
	defer j2.Close()
	for _, tp := range topics {
		var got []uint64
		rng2, err := j2.Read(1, tp, 1, ^uint64(0), func(b journal.Batch) bool {
			m := b.Message()
			for s, p := range m.Records() {
				if want := payloadOf(tp, s, len(p)); !slices.Equal(p, want) {
					t.Fatalf("%s seq %d: damaged payload", tp, s)
				}
				got = append(got, s)
			}
			return true
		})
		must(t, err)
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("%s: out of order or repeated: %v", tp, got)
		}
		if p := promised[tp]; rng2.Final < p || !slices.Equal(got[:min(len(got), int(p))], span(1, p)) {
			t.Fatalf("%s: promised 1..%d, holds %v (range %+v)", tp, p, got, rng2)
		}
		if rng2.Final >= next[tp] {
			t.Fatalf("%s: final %d, but only %d were appended", tp, rng2.Final, next[tp]-1)
		}
	}
	st := j2.Stats()
	// A snapshot never claims more than the disk kept: what a power loss
	// takes is an interrupted write, not damage to sealed data.
	if mode != journal.SyncNever && st.ShortSegments != 0 {
		t.Fatalf("a power loss made a sealed segment shorter than its snapshot: %+v", st)
	}
	// SyncAlways had synced everything: nothing is lost at all.
	if mode == journal.SyncAlways && (st.Holes != 0 || st.TornTails != 0 || st.Corrupt != 0) {
		t.Fatalf("SyncAlways lost something: %+v", st)
	}
	must(t, j2.Begin(2))
	mustAppend(t, j2, frames(2, "a", 1, 1, 10))
}

// TestDeterministicOnSimdisk runs one seeded life of a journal twice on
// the simulated disk (appends on two topics, ticks, retention, segment
// rolls, power losses and process crashes with reopens, bit flips, a full
// disk) and compares every byte on the disk and the journal's stats: a
// simulation that replays a seed replays the journal exactly. No crash
// may look like damage to sealed data on the way.
func TestDeterministicOnSimdisk(t *testing.T) {
	run := func(seed uint64) string {
		rng := rand.New(rand.NewPCG(seed, 7))
		d := simdisk.New()
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		cfg := simConfig(d, c)
		cfg.SegmentBytes = journal.MinSegmentBytes
		cfg.MaxBytes = 8 * journal.MinSegmentBytes
		cfg.Retention.MaxAge = 20 * time.Second
		j, err := journal.Open("/j", cfg)
		must(t, err)
		var trace []string
		epoch := uint64(1)
		next := map[string]uint64{}
		for step := range 3000 {
			switch r := rng.IntN(100); {
			case r < 80:
				tp := []string{"a", "bb"}[rng.IntN(2)]
				if next[tp] == 0 {
					next[tp] = 1
				}
				count := 1 + rng.IntN(3)
				err := j.Append(framesAt(epoch, tp, next[tp], count, c.now().UnixNano()))
				if err == nil {
					next[tp] += uint64(count)
				}
				trace = append(trace, fmt.Sprint(err))
			case r < 92:
				trace = append(trace, fmt.Sprint(j.Tick(c.advance(time.Duration(rng.IntN(2000))*time.Millisecond))))
			case r < 94:
				d.SetCapacity(d.Used() + int64(rng.IntN(4096)))
			case r < 96:
				d.SetCapacity(simdisk.Unlimited)
			case r < 97:
				d.FlipRandomBit(rng, func(p string) bool { return filepath.Ext(p) == ".log" })
			default:
				kind := simdisk.CrashOptions{Kind: simdisk.ProcessCrash}
				if rng.IntN(2) == 0 {
					kind = simdisk.RandomPowerLoss(rng)
				}
				d.Crash(kind)
				d.SetCapacity(simdisk.Unlimited)
				if j, err = journal.Open("/j", cfg); err != nil {
					t.Fatalf("step %d: reopen: %v", step, err)
				}
				epoch = j.NextEpoch(epoch + 1)
				clear(next)
				st := j.Stats()
				if st.ShortSegments != 0 {
					// Crashes and power losses are interrupted writes; only
					// damage makes a sealed segment shorter than its snapshot.
					t.Fatalf("seed %d step %d: after a %v a segment is shorter than its snapshot: %+v", seed, step, kind.Kind, st)
				}
				trace = append(trace, fmt.Sprintf("%+v", st))
			}
		}
		must(t, j.Close())
		h := sha256.New()
		for _, p := range d.Paths() {
			b, _ := d.ReadFile(p)
			fmt.Fprintf(h, "%s %x\n", p, b)
		}
		fmt.Fprintf(h, "%v %+v", trace, j.Stats())
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	for seed := uint64(1); seed <= 10; seed++ {
		if a, b := run(seed), run(seed); a != b {
			t.Fatalf("seed %d: two runs differ", seed)
		}
	}
}
