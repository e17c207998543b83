package membership

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/syncmq/syncmq/envelope"
)

// mustMarshal encodes m or fails the test.
func mustMarshal(t *testing.T, m Meta) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary(%+v): %v", m, err)
	}
	return b
}

func TestMetaRoundTrip(t *testing.T) {
	long := strings.Repeat("n", MaxFieldLen)
	cases := []struct {
		name string
		meta Meta
	}{
		{"minimal", Meta{Role: RolePublisher}},
		{"subscriber all fields", Meta{
			Role:             RoleSubscriber,
			NodeID:           "sub-1",
			PubEndpoint:      "tcp://10.0.0.1:5555",
			SyncEndpoint:     "tcp://sync.example.com:5556",
			RecoveryEndpoint: "tcp://[2001:db8::1]:5557",
			Topics:           []string{"orders.", "prices.eu"},
			Version:          7,
		}},
		{"leaving", Meta{Role: RoleSubscriber, NodeID: "x", Leaving: true}},
		{"ipc and inproc", Meta{Role: RolePublisher, PubEndpoint: "ipc://syncmq-pub.sock", SyncEndpoint: "inproc://sync"}},
		{"unicode", Meta{Role: RolePublisher, NodeID: "nœud-é", Topics: []string{"température", "日本"}}},
		{"max field", Meta{Role: RolePublisher, NodeID: long}},
		{"truncated as decoded", Meta{Role: RoleSubscriber, TopicsTruncated: true, TopicsDigest: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}},
		{"zone and underscore host", Meta{Role: RolePublisher, PubEndpoint: "tcp://[fe80::1%eth0]:1", SyncEndpoint: "tcp://my_host.local:65535"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mustMarshal(t, tc.meta)
			if len(b) > MetaMaxSize {
				t.Fatalf("encoded %d bytes", len(b))
			}
			got, err := UnmarshalMeta(b)
			if err != nil {
				t.Fatalf("UnmarshalMeta: %v", err)
			}
			if !reflect.DeepEqual(got, tc.meta) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tc.meta)
			}
			if again := mustMarshal(t, got); !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs:\n%x\n%x", again, b)
			}
		})
	}
}

func TestMetaOversizedTopicsBecomeDigest(t *testing.T) {
	var topics []string
	for i := range 60 {
		topics = append(topics, fmt.Sprintf("market.data.topic-%03d", i))
	}
	m := Meta{Role: RoleSubscriber, NodeID: "big", Topics: topics}
	b := mustMarshal(t, m)
	if len(b) > MetaMaxSize {
		t.Fatalf("encoded %d bytes", len(b))
	}
	got, err := UnmarshalMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.TopicsTruncated || got.Topics != nil || got.TopicsDigest != DigestTopics(topics) {
		t.Errorf("decoded %+v, want truncated with digest %x", got, DigestTopics(topics))
	}
	if !got.Matches([]string{"anything"}) || !envelope.PrefixesOverlap(got.Topics, []string{"x"}) {
		t.Error("a truncated topic list must match everything")
	}
	if again := mustMarshal(t, got); !bytes.Equal(again, b) {
		t.Error("re-encoding a truncated Meta changed its bytes")
	}

	// A list that fits is kept even if TopicsTruncated is set.
	small := Meta{Role: RoleSubscriber, Topics: []string{"a"}, TopicsTruncated: true}
	if got, _ := UnmarshalMeta(mustMarshal(t, small)); got.TopicsTruncated || len(got.Topics) != 1 {
		t.Errorf("small list decoded as %+v", got)
	}

	// Fields that do not fit even with the digest.
	ep := "ipc:///" + strings.Repeat("p", 240)
	huge := Meta{Role: RolePublisher, PubEndpoint: ep, SyncEndpoint: ep, RecoveryEndpoint: ep}
	if _, err := huge.MarshalBinary(); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("huge meta: %v, want ErrMetaTooLarge", err)
	}
}

func TestMetaMarshalRejectsInvalid(t *testing.T) {
	valid := Meta{Role: RolePublisher, NodeID: "n"}
	cases := []struct {
		name   string
		modify func(*Meta)
		want   error
	}{
		{"no role", func(m *Meta) { m.Role = "" }, ErrBadMeta},
		{"unknown role", func(m *Meta) { m.Role = "admin" }, ErrBadMeta},
		{"NodeID too long", func(m *Meta) { m.NodeID = strings.Repeat("x", MaxFieldLen+1) }, ErrMetaTooLarge},
		{"NodeID control char", func(m *Meta) { m.NodeID = "a\nb" }, ErrBadMeta},
		{"NodeID not UTF-8", func(m *Meta) { m.NodeID = "\xff" }, ErrBadMeta},
		{"bind address host", func(m *Meta) { m.PubEndpoint = "tcp://*:5555" }, ErrBadMeta},
		{"no port", func(m *Meta) { m.PubEndpoint = "tcp://host" }, ErrBadMeta},
		{"port 0", func(m *Meta) { m.PubEndpoint = "tcp://host:0" }, ErrBadMeta},
		{"port too big", func(m *Meta) { m.SyncEndpoint = "tcp://host:65536" }, ErrBadMeta},
		{"no scheme", func(m *Meta) { m.SyncEndpoint = "host:1" }, ErrBadMeta},
		{"unknown scheme", func(m *Meta) { m.RecoveryEndpoint = "udp://host:1" }, ErrBadMeta},
		{"space in host", func(m *Meta) { m.RecoveryEndpoint = "tcp://a b:1" }, ErrBadMeta},
		{"bad label", func(m *Meta) { m.RecoveryEndpoint = "tcp://-a.b:1" }, ErrBadMeta},
		{"bad IPv4", func(m *Meta) { m.RecoveryEndpoint = "tcp://1.2.3:1" }, ErrBadMeta},
		{"unbracketed IPv6", func(m *Meta) { m.RecoveryEndpoint = "tcp://::1:5" }, ErrBadMeta},
		{"empty ipc", func(m *Meta) { m.PubEndpoint = "ipc://" }, ErrBadMeta},
		{"empty topic", func(m *Meta) { m.Topics = []string{"a", ""} }, ErrBadMeta},
		{"topic not UTF-8", func(m *Meta) { m.Topics = []string{"\xc3"} }, ErrBadMeta},
		{"topic too long", func(m *Meta) { m.Topics = []string{strings.Repeat("t", MaxFieldLen+1)} }, ErrMetaTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := valid
			tc.modify(&m)
			_, err := m.MarshalBinary()
			if !errors.Is(err, tc.want) {
				t.Fatalf("MarshalBinary = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "membership: ") {
				t.Errorf("error lacks package prefix: %v", err)
			}
		})
	}
}

func TestUnmarshalMetaRejectsMalformed(t *testing.T) {
	good := mustMarshal(t, Meta{Role: RoleSubscriber, NodeID: "ab", Topics: []string{"t"}})
	// good: A5 01 00 02 00 | 02 'a' 'b' | 00 | 00 | 00 | 01 01 't'
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	digest := mustMarshal(t, Meta{Role: RoleSubscriber, TopicsTruncated: true})
	cases := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"short header", good[:4]},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'x'; return b })},
		{"future format", mutate(func(b []byte) []byte { b[1] = 2; return b })},
		{"unknown flag", mutate(func(b []byte) []byte { b[2] = 0x80; return b })},
		{"role 0", mutate(func(b []byte) []byte { b[3] = 0; return b })},
		{"role 3", mutate(func(b []byte) []byte { b[3] = 3; return b })},
		{"no fields", good[:headerLen]},
		{"string past end", mutate(func(b []byte) []byte { b[5] = 200; return b })},
		{"cut in topics", good[:len(good)-1]},
		{"missing topic count", good[:len(good)-3]},
		{"count too high", mutate(func(b []byte) []byte { b[len(b)-3] = 2; return b })},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"NodeID not UTF-8", mutate(func(b []byte) []byte { b[6] = 0xff; return b })},
		{"NodeID control char", mutate(func(b []byte) []byte { b[6] = '\n'; return b })},
		{"empty topic", mutate(func(b []byte) []byte { b[len(b)-2] = 0; return b[:len(b)-1] })},
		{"short digest", digest[:len(digest)-1]},
		{"digest plus count", append(append([]byte(nil), digest...), 0)},
		{"bad endpoint", append(append([]byte{metaMagic, metaFormat, 0, 1, 0, 0, 4}, "x://"...), 0, 0, 0)},
		{"too large", append(append([]byte(nil), good...), make([]byte, MetaMaxSize)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := UnmarshalMeta(tc.in)
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("UnmarshalMeta = %+v, %v; want ErrBadMeta", m, err)
			}
			if !reflect.DeepEqual(m, Meta{}) {
				t.Errorf("returned non-zero Meta %+v with error", m)
			}
		})
	}
	if _, err := UnmarshalMeta(make([]byte, MetaMaxSize+1)); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("oversized input: %v, want ErrMetaTooLarge too", err)
	}
}

func TestDigestTopics(t *testing.T) {
	a := []string{"b", "a", "c"}
	if DigestTopics(a) != DigestTopics([]string{"c", "b", "a"}) {
		t.Error("digest depends on order")
	}
	if a[0] != "b" {
		t.Error("DigestTopics sorted its argument")
	}
	if DigestTopics([]string{"ab", "c"}) == DigestTopics([]string{"a", "bc"}) {
		t.Error("digest ignores topic boundaries")
	}
	if DigestTopics(nil) == DigestTopics([]string{""}) {
		t.Error("digest ignores an empty topic")
	}
}

func TestRoleAndEventStrings(t *testing.T) {
	if Role("x").Valid() || !RolePublisher.Valid() || !RoleSubscriber.Valid() {
		t.Error("Role.Valid")
	}
	for typ, want := range map[EventType]string{EventJoin: "join", EventUpdate: "update", EventLeave: "leave",
		EventFailed: "failed", EventInvalid: "invalid", 0: "EventType(0)"} {
		if typ.String() != want {
			t.Errorf("%d.String() = %q", typ, typ.String())
		}
	}
	for s, want := range map[State]string{StateAlive: "alive", StateLeft: "left", StateFailed: "failed", 9: "State(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", s, s.String())
		}
	}
}
