package coord

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/simdisk"
	"github.com/syncmq/syncmq/journal"
)

// checkpointFS is a file system the checkpoint tests run on, with a new
// state directory.
type checkpointFS struct {
	name string
	fs   journal.FS // nil: the real one, as a Subscriber without stateFS
	disk *simdisk.Disk
	dir  func(t *testing.T) string
}

func checkpointFileSystems() []checkpointFS {
	d := simdisk.New()
	n := 0
	return []checkpointFS{
		{name: "os", dir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "state") }},
		{name: "simdisk", fs: d, disk: d, dir: func(*testing.T) string { n++; return fmt.Sprintf("/sub/%d/state", n) }},
	}
}

func (x checkpointFS) read(t *testing.T, path string) []byte {
	t.Helper()
	if x.disk != nil {
		b, err := x.disk.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (x checkpointFS) write(t *testing.T, path string, b []byte) {
	t.Helper()
	var err error
	if x.disk != nil {
		err = x.disk.WriteFile(path, b, 0o644)
	} else {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointsOnEachFS: the checkpoint log keeps the last sequence per
// key across a reopen, forgets an epoch, cuts a torn tail at any byte
// and goes on after it, on real files and on the simulated disk.
func TestCheckpointsOnEachFS(t *testing.T) {
	pub := envelope.ID{1, 2, 3}
	for _, x := range checkpointFileSystems() {
		t.Run(x.name, func(t *testing.T) {
			dir := x.dir(t)
			c, err := openCheckpoints(dir, x.fs)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]uint64{}
			for i := range 5 {
				topic := fmt.Sprintf("t%d", i)
				c.note(ckptKey{pub: pub, epoch: 7, topic: topic}, uint64(10*i+1))
				c.note(ckptKey{pub: pub, epoch: 7, topic: topic}, uint64(10*i+2))
				want[topic] = uint64(10*i + 2)
			}
			c.note(ckptKey{pub: pub, epoch: 6, topic: "old"}, 3)
			c.forget(pub, 6)
			if err := c.flush(); err != nil {
				t.Fatal(err)
			}
			if err := c.close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "checkpoints")
			full := x.read(t, path)
			for cut := range len(full) + 1 {
				x.write(t, path, full[:cut])
				c, err := openCheckpoints(dir, x.fs)
				if err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				got := c.epochs(pub)
				if cut == len(full) && (!maps.Equal(got[7], want) || got[6] != nil) {
					t.Fatalf("whole log: %v, want epoch 7 %v", got, want)
				}
				for topic, seq := range got[7] {
					if seq != want[topic] && seq != want[topic]-1 {
						t.Fatalf("cut %d: %s at %d, never noted", cut, topic, seq)
					}
				}
				// New records follow the valid prefix.
				c.note(ckptKey{pub: pub, epoch: 8, topic: "new"}, 1)
				if err := c.close(); err != nil {
					t.Fatal(err)
				}
				c, err = openCheckpoints(dir, x.fs)
				if err != nil {
					t.Fatal(err)
				}
				if after := c.epochs(pub); after[8]["new"] != 1 || !maps.Equal(after[7], got[7]) {
					t.Fatalf("cut %d: after appending: %v, before %v", cut, after, got)
				}
				c.close()
			}
		})
	}
}

// TestCheckpointsPowerLoss: on the simulated disk, checkpoints written
// but not closed are lost with the power (they are not synced), and
// those a close synced survive it, name and all.
func TestCheckpointsPowerLoss(t *testing.T) {
	d := simdisk.New()
	pub := envelope.ID{9}
	c, err := openCheckpoints("/state", d)
	if err != nil {
		t.Fatal(err)
	}
	c.note(ckptKey{pub: pub, epoch: 1, topic: "a"}, 5)
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	c, err = openCheckpoints("/state", d)
	if err != nil {
		t.Fatal(err)
	}
	c.note(ckptKey{pub: pub, epoch: 1, topic: "a"}, 9)
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	d.Crash(simdisk.CrashOptions{Kind: simdisk.PowerLoss})
	c, err = openCheckpoints("/state", d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if got := c.epochs(pub)[1]["a"]; got != 5 {
		t.Fatalf("after the power loss: %d, want the closed 5", got)
	}
}
