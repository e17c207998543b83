package recovery

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestArenaPiecesAreDistinct hands out chunks of every class in random
// order, gives random ones back, and checks that no two chunks in use
// overlap, that each keeps what was written to it, and that blocks freed
// by one class are taken by another.
func TestArenaPiecesAreDistinct(t *testing.T) {
	a := newArena(8 << 20)
	defer a.close()
	r := rand.New(rand.NewPCG(7, 8))
	type held struct {
		c    chunk
		fill byte
	}
	var live []held
	sizes := []int{minChunk, 2 * minChunk, 4 * minChunk, 8 * minChunk, maxChunk}
	for i := 0; i < 20000; i++ {
		if len(live) > 0 && r.IntN(2) == 0 {
			j := r.IntN(len(live))
			h := live[j]
			if !bytes.Equal(h.c.b, bytes.Repeat([]byte{h.fill}, len(h.c.b))) {
				t.Fatalf("chunk of %d bytes was overwritten", len(h.c.b))
			}
			a.release(h.c)
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			continue
		}
		n := sizes[r.IntN(len(sizes))]
		c := a.alloc(n)
		if len(c.b) != n || cap(c.b) != n {
			t.Fatalf("chunk of %d bytes, cap %d, want %d", len(c.b), cap(c.b), n)
		}
		fill := byte(i)
		for k := range c.b {
			c.b[k] = fill
		}
		live = append(live, held{c, fill})
	}
	for _, h := range live {
		if !bytes.Equal(h.c.b, bytes.Repeat([]byte{h.fill}, len(h.c.b))) {
			t.Fatalf("chunk of %d bytes was overwritten", len(h.c.b))
		}
		a.release(h.c)
	}
	if len(a.free) != len(a.blocks) {
		t.Fatalf("%d of %d blocks free after every chunk came back", len(a.free), len(a.blocks))
	}
	for k, p := range a.partial {
		if len(p) != 0 {
			t.Fatalf("class %d still has %d partly used blocks", k, len(p))
		}
	}
}

// TestArenaBounded: past its slab limit the arena hands out heap chunks
// instead of mapping more, and a large chunk always comes from the heap.
func TestArenaBounded(t *testing.T) {
	a := newArena(0) // one slab
	defer a.close()
	var cs []chunk
	for range blocksPerSlab {
		cs = append(cs, a.alloc(maxChunk))
	}
	if a.heap != 0 || len(a.slabs) != 1 {
		t.Fatalf("%d heap chunks, %d slabs after filling one slab", a.heap, len(a.slabs))
	}
	if c := a.alloc(minChunk); c.block >= 0 || a.heap != 1 {
		t.Fatalf("a chunk past the limit came from block %d", c.block)
	}
	if c := a.alloc(maxChunk + 1); c.block >= 0 || len(c.b) != maxChunk+1 {
		t.Fatal("a chunk larger than a block did not come from the heap")
	}
	a.release(cs[0])
	if c := a.alloc(minChunk); c.block != cs[0].block {
		t.Fatalf("a freed block was not reused: got block %d, want %d", c.block, cs[0].block)
	}
}

// TestHistoryReusesMemory: once its budget is full, a History of any
// number of topics keeps its memory within MaxBytes and takes nothing new
// from the heap, round-robin or not.
func TestHistoryReusesMemory(t *testing.T) {
	for _, topics := range []int{1, 10, 1000} {
		t.Run(fmt.Sprint("topics=", topics), func(t *testing.T) {
			const budget = 8 << 20
			h := mustHistory(t, HistoryConfig{MaxMessages: 100_000, MaxBytes: budget, MaxTopics: 10_000})
			defer h.Close()
			f := batchOf("x", 1, bytes.Repeat([]byte("r"), 1000))
			names := make([]string, topics)
			for i := range names {
				names[i] = fmt.Sprint("t", i)
			}
			for i := 0; i < 4*budget/1000; i++ {
				if err := h.AppendBatch(names[i%topics], uint64(i/topics+1), 1, f[1], f[2]); err != nil {
					t.Fatal(err)
				}
			}
			st := h.Stats()
			if st.Evicted == 0 || st.Bytes > budget {
				t.Fatalf("stats %+v: want evictions and at most %d bytes charged", st, budget)
			}
			if limit := int64(budget + classes*maxChunk + slabSize); st.Mapped > limit {
				t.Fatalf("%d bytes mapped for a budget of %d", st.Mapped, budget)
			}
			if h.arena.heap != 0 {
				t.Fatalf("%d chunks came from the heap", h.arena.heap)
			}
		})
	}
}

func TestHistoryClose(t *testing.T) {
	h := mustHistory(t, HistoryConfig{MaxMessages: 100, MaxBytes: 1 << 20, MaxTopics: 10})
	appendRun(t, h, "a", 1, 10, 1)
	h.Close()
	h.Close()
	f := batchOf("a", 11, []byte("x"))
	if err := h.AppendBatch("a", 11, 1, f[1], f[2]); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendBatch after Close: %v, want ErrClosed", err)
	}
	called := false
	if b := h.Batches("a", 1, 10, func(Batch) bool { called = true; return true }); b.Known || called {
		t.Fatalf("Batches after Close: %+v, called %v", b, called)
	}
	if st := h.Stats(); st.Mapped != 0 {
		t.Fatalf("%d bytes still mapped after Close", st.Mapped)
	}
}
