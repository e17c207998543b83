package membership

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestClusterJoinSeesMeta(t *testing.T) {
	t.Parallel()
	cfgs := []Config{
		testConfig(t, "c-pub", RolePublisher, "orders.eu", "orders.us"),
		testConfig(t, "c-sub1", RoleSubscriber, "orders."),
		testConfig(t, "c-sub2", RoleSubscriber),
		testConfig(t, "c-sub3", RoleSubscriber, "prices"),
	}
	cfgs[1].Meta.RecoveryEndpoint = "tcp://localhost:7000"
	var nodes []*Node
	for _, c := range cfgs {
		nodes = append(nodes, startNode(t, c))
	}
	seedEvents := record(nodes[0])
	for _, n := range nodes[1:] {
		joinTo(t, n, nodes[0])
	}

	want := []string{"c-pub", "c-sub1", "c-sub2", "c-sub3"}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.Name()+" to see every member", func() bool {
			return slices.Equal(memberNames(n), want)
		})
	}
	for _, n := range nodes {
		for i, m := range n.Members() {
			wantMeta := cfgs[i].Meta
			wantMeta.NodeID = cfgs[i].NodeName
			if !reflect.DeepEqual(m.Meta, wantMeta) {
				t.Errorf("%s sees %s with meta %+v, want %+v", n.Name(), m.Name, m.Meta, wantMeta)
			}
			if m.Local != (m.Name == n.Name()) || m.State != StateAlive {
				t.Errorf("%s sees %s with Local=%v State=%v", n.Name(), m.Name, m.Local, m.State)
			}
			if m.Addr != nodes[i].Addr() {
				t.Errorf("%s sees %s at %s, want %s", n.Name(), m.Name, m.Addr, nodes[i].Addr())
			}
		}
		if got := n.Stats().Members; got != len(want) {
			t.Errorf("%s Stats().Members = %d", n.Name(), got)
		}
	}
	waitFor(t, 5*time.Second, "join events on the seed", func() bool {
		return seedEvents.has(EventJoin, "c-sub1") && seedEvents.has(EventJoin, "c-sub2") && seedEvents.has(EventJoin, "c-sub3")
	})
	if seedEvents.has(EventJoin, "c-pub") {
		t.Errorf("seed reported an event about itself: %s", seedEvents)
	}
	if m, ok := nodes[2].Member("c-pub"); !ok || !m.Meta.Matches([]string{"orders.e"}) || m.Meta.Matches([]string{"prices"}) {
		t.Errorf("Member(c-pub) = %+v, %v", m, ok)
	}
	if got := nodes[0].LocalNode(); got.Name != "c-pub" || !got.Local || got.Addr != nodes[0].Addr() {
		t.Errorf("LocalNode() = %+v", got)
	}
}

func TestFailureAndLeaveAreReported(t *testing.T) {
	t.Parallel()
	// Observers use both delivery modes: channel and OnEvent callback.
	var cbRec recorder
	names := []string{"f-seed", "f-obs1", "f-obs2", "f-crash", "f-leave"}
	var nodes []*Node
	var recs []*recorder
	for i, name := range names {
		cfg := testConfig(t, name, RoleSubscriber)
		if i == 1 {
			cfg.OnEvent = cbRec.add
		}
		n := startNode(t, cfg)
		nodes = append(nodes, n)
		if i == 1 {
			recs = append(recs, &cbRec)
		} else {
			recs = append(recs, record(n))
		}
	}
	for _, n := range nodes[1:] {
		joinTo(t, n, nodes[0])
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.Name()+" to see 5 members", func() bool { return len(n.Members()) == 5 })
	}

	timings, err := ProfileTimings(ProfileLocal, len(nodes))
	if err != nil {
		t.Fatal(err)
	}
	crash, leaver := nodes[3], nodes[4]
	observers := nodes[:3]
	// The leave first, then the crash: a leave gossiped while another
	// member has just died may go to the dead one and reach an observer
	// only after that observer's own probes declared the leaver failed,
	// so the two departures are tested one after the other.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := leaver.Shutdown(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	for i, n := range observers {
		rec := recs[i]
		waitFor(t, 5*time.Second, n.Name()+" to report f-leave as left", func() bool {
			return rec.has(EventLeave, "f-leave")
		})
	}
	start := time.Now()
	if err := crash.Close(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, n := range observers {
		rec := recs[i]
		waitFor(t, timings.DetectionMax, n.Name()+" to report f-crash as failed", func() bool {
			return rec.has(EventFailed, "f-crash")
		})
		if rec.has(EventFailed, "f-leave") || rec.has(EventLeave, "f-crash") {
			t.Errorf("%s misclassified a departure: %s", n.Name(), rec)
		}
		if ev, _ := rec.find(EventLeave, "f-leave"); ev.Member.State != StateLeft || ev.Member.Meta.Role != RoleSubscriber {
			t.Errorf("leave event %+v", ev)
		}
		if ev, _ := rec.find(EventFailed, "f-crash"); ev.Member.State != StateFailed {
			t.Errorf("failed event %+v", ev)
		}
		if got := memberNames(n); !slices.Equal(got, []string{"f-obs1", "f-obs2", "f-seed"}) {
			t.Errorf("%s members after departures: %v", n.Name(), got)
		}
	}
	t.Logf("failure reported by all observers %v after Shutdown (typical %v, max %v)",
		time.Since(start).Round(time.Millisecond), timings.DetectionTypical, timings.DetectionMax)
	if got := leaver.LocalNode().State; got != StateLeft {
		t.Errorf("leaver LocalNode().State = %v", got)
	}
	if got := crash.LocalNode().State; got != StateFailed {
		t.Errorf("crashed LocalNode().State = %v", got)
	}
}

func TestKeyMismatchFailsJoin(t *testing.T) {
	t.Parallel()
	key1, _ := ParseKey("cg8StVXbQJ0gPvMd9o7yrg==")
	key2, _ := ParseKey("HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=")

	cfgA := testConfig(t, "k-a", RolePublisher)
	cfgA.SecretKey = key1
	encrypted := startNode(t, cfgA)
	plain := startNode(t, testConfig(t, "k-p", RolePublisher))

	cases := []struct {
		name        string
		key         []byte
		seed        *Node
		wantErr     bool
		wantKeyHint string
	}{
		{"k-wrong", key2, encrypted, true, "every node needs the same SecretKey"},
		{"k-plain", nil, encrypted, true, "this node has no SecretKey"},
		{"k-only", key1, plain, true, "the peer does not"},
		{"k-same", key1, encrypted, false, ""},
	}
	for _, tc := range cases {
		cfg := testConfig(t, tc.name, RoleSubscriber)
		cfg.SecretKey = tc.key
		n := startNode(t, cfg)
		a := tc.seed
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		k, err := n.Join(ctx, []string{a.Addr()})
		cancel()
		if !tc.wantErr {
			if err != nil || k != 1 {
				t.Fatalf("%s: Join = %d, %v", tc.name, k, err)
			}
			waitFor(t, 5*time.Second, "encrypted peers to see each other", func() bool {
				_, ok := a.Member(tc.name)
				return ok
			})
			continue
		}
		if err == nil {
			t.Fatalf("%s: Join succeeded with a mismatched key", tc.name)
		}
		var je *JoinError
		if !errors.Is(err, ErrJoinFailed) || !errors.Is(err, ErrKeyMismatch) || !errors.As(err, &je) {
			t.Fatalf("%s: Join error %v does not wrap ErrJoinFailed and ErrKeyMismatch", tc.name, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "gossip key mismatch or unencrypted peer") || !strings.Contains(msg, tc.wantKeyHint) {
			t.Errorf("%s: unclear error: %s", tc.name, msg)
		}
		t.Logf("%s: %v", tc.name, err)
		if _, ok := a.Member(tc.name); ok {
			t.Errorf("%s became a member despite the key mismatch", tc.name)
		}
	}
}

func TestJoinErrors(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "j-node", RoleSubscriber))
	ctx := context.Background()

	if _, err := n.Join(ctx, nil); !errors.Is(err, ErrNoSeeds) {
		t.Errorf("Join(nil) = %v, want ErrNoSeeds", err)
	}
	if _, err := n.Join(ctx, []string{"no-port"}); !errors.Is(err, ErrJoinFailed) {
		t.Errorf("Join(no-port) = %v, want ErrJoinFailed", err)
	}

	// A port with nothing listening: refused, not a key problem.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	_, err = n.Join(ctx, []string{dead})
	if !errors.Is(err, ErrJoinFailed) || errors.Is(err, ErrKeyMismatch) {
		t.Errorf("Join(%s) = %v, want ErrJoinFailed only", dead, err)
	}
	t.Logf("refused: %v", err)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := n.Join(cancelled, []string{dead}); !errors.Is(err, context.Canceled) {
		t.Errorf("Join(cancelled) = %v", err)
	}

	// Config.Join is used when no seeds are given.
	seed := startNode(t, testConfig(t, "j-seed", RolePublisher))
	cfg := testConfig(t, "j-cfg", RoleSubscriber)
	cfg.Join = []string{seed.Addr()}
	m := startNode(t, cfg)
	if k, err := m.Join(ctx, nil); err != nil || k != 1 {
		t.Errorf("Join via Config.Join = %d, %v", k, err)
	}
}

func TestUpdateMetaPropagates(t *testing.T) {
	t.Parallel()
	a := startNode(t, testConfig(t, "u-a", RolePublisher, "t1"))
	b := startNode(t, testConfig(t, "u-b", RoleSubscriber))
	c := startNode(t, testConfig(t, "u-c", RoleSubscriber))
	recB := record(b)
	joinTo(t, b, a)
	joinTo(t, c, a)
	waitFor(t, 10*time.Second, "3 members on c", func() bool { return len(c.Members()) == 3 })

	newMeta := a.LocalNode().Meta
	newMeta.Topics = []string{"t1", "t2"}
	newMeta.RecoveryEndpoint = "tcp://[::1]:6000"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.UpdateMeta(ctx, newMeta); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	if got := a.LocalNode().Meta; !reflect.DeepEqual(got, newMeta) {
		t.Errorf("LocalNode().Meta = %+v", got)
	}
	for _, n := range []*Node{b, c} {
		waitFor(t, 10*time.Second, n.Name()+" to see the new meta", func() bool {
			m, ok := n.Member("u-a")
			return ok && reflect.DeepEqual(m.Meta, newMeta)
		})
	}
	waitFor(t, 5*time.Second, "update event on b", func() bool { return recB.has(EventUpdate, "u-a") })

	bad := newMeta
	bad.PubEndpoint = "tcp://*:5555"
	if err := a.UpdateMeta(ctx, bad); !errors.Is(err, ErrBadMeta) {
		t.Errorf("UpdateMeta(bind address) = %v, want ErrBadMeta", err)
	}
	bad = newMeta
	bad.Leaving = true
	if err := a.UpdateMeta(ctx, bad); !errors.Is(err, ErrBadMeta) {
		t.Errorf("UpdateMeta(Leaving) = %v, want ErrBadMeta", err)
	}
}

// rawDelegate lets a plain memberlist node gossip arbitrary metadata.
type rawDelegate struct {
	mu   sync.Mutex
	meta []byte
}

func (d *rawDelegate) set(b []byte) {
	d.mu.Lock()
	d.meta = b
	d.mu.Unlock()
}
func (d *rawDelegate) NodeMeta(int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.meta)
}
func (d *rawDelegate) NotifyMsg([]byte)                {}
func (d *rawDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *rawDelegate) LocalState(bool) []byte          { return nil }
func (d *rawDelegate) MergeRemoteState([]byte, bool)   {}

func TestInvalidPeerMetaIsIgnored(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "i-node", RoleSubscriber))
	rec := record(n)

	d := &rawDelegate{meta: []byte("not syncmq metadata")}
	mc := memberlist.DefaultLocalConfig()
	mc.Name = "i-raw"
	mc.BindAddr = "127.0.0.1"
	mc.BindPort = 0
	mc.Delegate = d
	mc.Logger = log.New(io.Discard, "", 0)
	raw, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Shutdown() })
	if _, err := raw.Join([]string{n.Addr()}); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 5*time.Second, "invalid event", func() bool { return rec.has(EventInvalid, "i-raw") })
	ev, _ := rec.find(EventInvalid, "i-raw")
	if !errors.Is(ev.Err, ErrBadMeta) || ev.Member.Addr == "" {
		t.Errorf("invalid event %+v", ev)
	}
	if _, ok := n.Member("i-raw"); ok || len(n.Members()) != 1 {
		t.Errorf("member with bad metadata listed: %v", memberNames(n))
	}
	if n.Stats().InvalidMeta == 0 {
		t.Error("Stats().InvalidMeta = 0")
	}

	// Valid metadata later makes it a member.
	good, err := Meta{Role: RolePublisher, NodeID: "raw", PubEndpoint: "ipc://syncmq-raw.sock"}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	d.set(good)
	if err := raw.UpdateNode(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "join after valid metadata", func() bool { return rec.has(EventJoin, "i-raw") })
	if m, ok := n.Member("i-raw"); !ok || m.Meta.NodeID != "raw" {
		t.Errorf("Member(i-raw) = %+v, %v", m, ok)
	}
}

func TestEventsDroppedWhenFull(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "d-seed", RolePublisher)
	cfg.EventBuffer = 1
	seed := startNode(t, cfg) // nobody reads its events
	for i := range 3 {
		n := startNode(t, testConfig(t, "d-"+strconv.Itoa(i), RoleSubscriber))
		joinTo(t, n, seed)
	}
	waitFor(t, 10*time.Second, "4 members", func() bool { return len(seed.Members()) == 4 })
	if got := seed.Stats().DroppedEvents; got < 2 {
		t.Errorf("DroppedEvents = %d, want >= 2", got)
	}
	if ev := <-seed.Events(); ev.Type != EventJoin {
		t.Errorf("queued event = %+v", ev)
	}
}

func TestLifecycleIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	a, err := New(testConfig(t, "l-a", RolePublisher))
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(a.Addr()); port == "0" || port == "" {
		t.Errorf("Addr() = %s, want the bound port", a.Addr())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
	if err := a.Shutdown(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Shutdown = %v, want ErrClosed", err)
	}
	if _, err := a.Join(ctx, []string{"127.0.0.1:1"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Shutdown = %v, want ErrClosed", err)
	}
	if err := a.UpdateMeta(ctx, a.LocalNode().Meta); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Shutdown = %v, want ErrClosed", err)
	}
	if _, open := <-a.Events(); open {
		t.Error("Events not closed after Shutdown")
	}

	// Shutdown alone (no peers) returns at once; repeated and concurrent
	// calls are fine.
	var calls int
	cfg := testConfig(t, "l-b", RolePublisher)
	cfg.OnEvent = func(Event) { calls++ }
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Shutdown(ctx); err != nil {
				t.Errorf("Leave = %v", err)
			}
		}()
	}
	wg.Wait()
	if err := b.Shutdown(ctx); err != nil {
		t.Errorf("Leave again = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Shutdown after Leave = %v", err)
	}
	if _, open := <-b.Events(); open {
		t.Error("Events not closed after Leave in OnEvent mode")
	}
	if calls != 0 {
		t.Errorf("OnEvent called %d times for a lone node", calls)
	}

	// A cancelled context still shuts the node down.
	c, err := New(testConfig(t, "l-c", RoleSubscriber))
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.UpdateMeta(cancelled, c.LocalNode().Meta); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateMeta(cancelled) = %v", err)
	}
	if err := c.Shutdown(cancelled); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Leave(cancelled) = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Shutdown after cancelled Leave = %v", err)
	}
	if got := c.LocalNode().State; got != StateLeft {
		t.Errorf("LocalNode().State = %v after Leave", got)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "bad", "")
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New without role = %v", err)
	}
	// A port already in use.
	a := startNode(t, testConfig(t, "p-a", RolePublisher))
	_, port, _ := net.SplitHostPort(a.Addr())
	cfg = testConfig(t, "p-b", RolePublisher)
	cfg.BindPort, _ = strconv.Atoi(port)
	if n, err := New(cfg); err == nil {
		_ = n.Close()
		t.Error("New on a used port succeeded")
	}
}
