package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// turnOrder has waiters queue behind a held turn in the order given
// (host of each), then releases turns one by one and returns the order
// in which the waiters got them.
func turnOrder(t *testing.T, hosts []string, sizes []int) []string {
	t.Helper()
	tr := NewTurns()
	if err := tr.Wait(context.Background(), "holder", 1, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tr.Wait(context.Background(), h, sizes[i], 0); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, fmt.Sprintf("%s#%d", HostKey(h), i))
			mu.Unlock()
			tr.Release()
		}()
		// Queue them in this order.
		for deadline := time.Now().Add(10 * time.Second); tr.Stats().Waiting != i+1; {
			if time.Now().After(deadline) {
				t.Fatal("waiter did not queue")
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	tr.Release()
	wg.Wait()
	if st := tr.Stats(); st.Waiting != 0 || st.Waits != uint64(len(hosts)) {
		t.Errorf("stats %+v", st)
	}
	return got
}

// TestTurnsRoundRobin: waiters asking for the same bytes take turns
// round robin over the hosts, and in the order they came within a host,
// so a host with three waiters gets no turn before each other host got
// one.
func TestTurnsRoundRobin(t *testing.T) {
	got := turnOrder(t, []string{"a:1", "a:2", "a:3", "b:1", "c:1", "b:2"}, []int{1, 1, 1, 1, 1, 1})
	want := "a#0 b#3 c#4 a#1 b#5 a#2"
	if strings.Join(got, " ") != want {
		t.Fatalf("turns %v, want %s", got, want)
	}
}

// TestTurnsShareBytes: a host whose waiters ask for four times the bytes
// gets a turn for every four of a host asking for little, and within a
// host the same holds between connections.
func TestTurnsShareBytes(t *testing.T) {
	hosts := []string{"x:1", "x:2", "x:3"}
	sizes := []int{4, 4, 4}
	for i := 0; i < 8; i++ {
		hosts, sizes = append(hosts, fmt.Sprintf("y:%d", i)), append(sizes, 1)
	}
	got := strings.Join(turnOrder(t, hosts, sizes), " ")
	want := "y#3 y#4 y#5 x#0 y#6 y#7 y#8 y#9 x#1 y#10 x#2"
	if got != want {
		t.Fatalf("turns %s, want %s", got, want)
	}
	// Within one host, the waiters asking for little go before the one
	// asking for more that came first.
	got = strings.Join(turnOrder(t, []string{"z:1", "z:2", "z:3", "z:4", "z:5"}, []int{3, 1, 1, 1, 1}), " ")
	want = "z#1 z#2 z#3 z#4 z#0"
	if got != want {
		t.Fatalf("turns within a host %s, want %s", got, want)
	}
}

// TestTurnsGiveUp: a waiter whose ctx ends or whose wait runs out leaves
// the queue holding nothing; the turns go on to the others.
func TestTurnsGiveUp(t *testing.T) {
	tr := NewTurns()
	if err := tr.Wait(context.Background(), "holder", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := tr.Wait(context.Background(), "late", 1, 10*time.Millisecond); !errors.Is(err, ErrNoTurn) {
		t.Fatalf("bounded wait: %v, want ErrNoTurn", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Wait(ctx, "cancelled", 1, 0) }()
	for deadline := time.Now().Add(10 * time.Second); tr.Stats().Waiting != 1; {
		if time.Now().After(deadline) {
			t.Fatal("waiter did not queue")
		}
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if st := tr.Stats(); st.Waiting != 0 {
		t.Fatalf("stats %+v: want nobody waiting", st)
	}
	tr.Release()
	// Free again: the next Wait gets the turn at once.
	if err := tr.Wait(context.Background(), "next", 1, time.Nanosecond); err != nil {
		t.Fatalf("free turn: %v", err)
	}
	tr.Release()
}

// TestTurnsRace: many waiters from a few hosts, some giving up, never
// hold two turns at once, and every turn is ended.
func TestTurnsRace(t *testing.T) {
	tr := NewTurns()
	var inTurn, maxIn, served int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%3)*50*time.Microsecond)
				if i%3 == 0 {
					ctx = context.Background()
				}
				err := tr.Wait(ctx, fmt.Sprintf("h%d", g%4), 1+i%7, 0)
				cancel()
				if err != nil {
					continue
				}
				mu.Lock()
				inTurn++
				maxIn = max(maxIn, inTurn)
				served++
				inTurn--
				mu.Unlock()
				tr.Release()
			}
		}()
	}
	wg.Wait()
	if maxIn != 1 || served == 0 {
		t.Fatalf("at most %d in a turn at once (want 1), %d served", maxIn, served)
	}
	if err := tr.Wait(context.Background(), "after", 1, time.Millisecond); err != nil {
		t.Fatalf("the turn was not free after every waiter: %v", err)
	}
}
