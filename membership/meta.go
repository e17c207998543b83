package membership

import (
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/syncmq/syncmq/envelope"
)

// Role says what a node does in a syncmq cluster.
type Role string

// The roles a Meta can carry.
const (
	RolePublisher  Role = "publisher"
	RoleSubscriber Role = "subscriber"
)

// Valid reports whether r is RolePublisher or RoleSubscriber.
func (r Role) Valid() bool { return r == RolePublisher || r == RoleSubscriber }

// Encoding limits.
const (
	// MetaMaxSize is the largest encoded Meta in bytes: memberlist's limit
	// on node metadata.
	MetaMaxSize = memberlist.MetaMaxSize

	// MaxFieldLen is the longest NodeID, endpoint or single topic in bytes.
	MaxFieldLen = 255

	// MaxTopics is the most topics encoded as a list; a longer list is
	// replaced by its digest (see Meta.TopicsTruncated).
	MaxTopics = 255
)

// Wire format, version 1 (all lengths are one unsigned byte):
//
//	magic(1)=0xA5 format(1)=1 flags(1) role(1) version(1)
//	len NodeID | len PubEndpoint | len SyncEndpoint | len RecoveryEndpoint
//	flags&flagTopicsDigest == 0: count(1) then count × (len topic)
//	flags&flagTopicsDigest != 0: digest(8), FNV-1a 64 of the sorted topics
//
// Nothing may follow. The encoding is canonical: every byte string that
// UnmarshalMeta accepts is what MarshalBinary produces for the result.
const (
	metaMagic  byte = 0xA5
	metaFormat byte = 1
	headerLen       = 5

	flagTopicsDigest byte = 1 << 0
	flagLeaving      byte = 1 << 1
	knownFlags            = flagTopicsDigest | flagLeaving

	roleCodePublisher  byte = 1
	roleCodeSubscriber byte = 2
)

// Meta is the metadata a node gossips about itself. Its encoding must fit
// in MetaMaxSize bytes; see MarshalBinary for what happens to long topic
// lists.
type Meta struct {
	// Role is RolePublisher or RoleSubscriber. Required.
	Role Role

	// NodeID is the application-level identity of the node (UTF-8, at most
	// MaxFieldLen bytes). Node fills it with the memberlist node name when
	// empty.
	NodeID string

	// PubEndpoint, SyncEndpoint and RecoveryEndpoint are ZeroMQ endpoints
	// peers connect to: "tcp://host:port" (host a DNS name or IP literal,
	// IPv6 in brackets, never "*"; port 1-65535), "ipc://path" or
	// "inproc://name". Empty means the node offers no such socket. At most
	// MaxFieldLen bytes each.
	PubEndpoint      string
	SyncEndpoint     string
	RecoveryEndpoint string

	// Topics are topic strings: for a subscriber its subscription prefixes,
	// for a publisher the topics it publishes on. Empty means all topics.
	// Each is 1 to MaxFieldLen bytes of UTF-8.
	Topics []string

	// TopicsTruncated is set on a decoded Meta whose sender's topic list
	// did not fit in MetaMaxSize bytes; only its digest was sent, and
	// Topics is empty. Callers must treat such a node as matching every
	// topic, which Matches does because Topics is empty.
	TopicsTruncated bool

	// TopicsDigest is the FNV-1a 64-bit digest (DigestTopics) of the
	// sender's sorted topic list when TopicsTruncated is set, and zero
	// otherwise. Two truncated lists with equal digests are almost
	// certainly equal.
	TopicsDigest [8]byte

	// Leaving is set by Node.Shutdown, which gossips it just before leaving
	// so that peers can report the departure as EventLeave rather than
	// EventFailed. Callers must not set it.
	Leaving bool

	// Version is the application protocol version the node speaks. This
	// package only carries it.
	Version uint8
}

// Matches reports whether a publisher described by m may publish a topic
// matched by one of subPrefixes: envelope.PrefixesOverlap, so a truncated
// topic list matches everything.
func (m Meta) Matches(subPrefixes []string) bool {
	return envelope.PrefixesOverlap(m.Topics, subPrefixes)
}

// MarshalBinary encodes m in at most MetaMaxSize bytes. It implements
// encoding.BinaryMarshaler.
//
// If Topics does not fit (more than MaxTopics entries, or too many bytes
// alongside the other fields), only DigestTopics(Topics) is encoded, and
// the decoded Meta has TopicsTruncated set and no Topics. A Meta with no
// Topics but TopicsTruncated set (as decoded) re-encodes its
// TopicsDigest, so decoding and re-encoding reproduces the input bytes.
//
// Errors wrap ErrBadMeta for an invalid field and ErrMetaTooLarge when a
// field is longer than MaxFieldLen or the encoding cannot fit.
func (m Meta) MarshalBinary() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	base := headerLen + 4 + len(m.NodeID) + len(m.PubEndpoint) + len(m.SyncEndpoint) + len(m.RecoveryEndpoint)

	flags := byte(0)
	if m.Leaving {
		flags |= flagLeaving
	}
	size := base + 1
	for _, t := range m.Topics {
		size += 1 + len(t)
	}
	var digest [8]byte
	switch {
	case len(m.Topics) == 0 && m.TopicsTruncated:
		flags |= flagTopicsDigest
		digest = m.TopicsDigest
	case len(m.Topics) > MaxTopics || size > MetaMaxSize:
		flags |= flagTopicsDigest
		digest = DigestTopics(m.Topics)
	}
	if flags&flagTopicsDigest != 0 {
		size = base + len(digest)
	}
	if size > MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes with the topic digest, max %d", ErrMetaTooLarge, size, MetaMaxSize)
	}

	b := make([]byte, 0, size)
	b = append(b, metaMagic, metaFormat, flags, roleCode(m.Role), m.Version)
	for _, s := range []string{m.NodeID, m.PubEndpoint, m.SyncEndpoint, m.RecoveryEndpoint} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	if flags&flagTopicsDigest != 0 {
		b = append(b, digest[:]...)
	} else {
		b = append(b, byte(len(m.Topics)))
		for _, t := range m.Topics {
			b = append(b, byte(len(t)))
			b = append(b, t...)
		}
	}
	return b, nil
}

// UnmarshalMeta decodes metadata produced by Meta.MarshalBinary. It checks
// every length, the role, UTF-8, endpoint syntax and that no bytes follow.
// Every error wraps ErrBadMeta. It never panics, and the result does not
// alias b.
func UnmarshalMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > MetaMaxSize {
		return m, fmt.Errorf("%w: %w: %d bytes, max %d", ErrBadMeta, ErrMetaTooLarge, len(b), MetaMaxSize)
	}
	if len(b) < headerLen {
		return m, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrBadMeta, len(b), headerLen)
	}
	if b[0] != metaMagic {
		return m, fmt.Errorf("%w: magic 0x%02x, want 0x%02x", ErrBadMeta, b[0], metaMagic)
	}
	if b[1] != metaFormat {
		return m, fmt.Errorf("%w: format version %d, this code reads %d", ErrBadMeta, b[1], metaFormat)
	}
	flags := b[2]
	if flags&^knownFlags != 0 {
		return m, fmt.Errorf("%w: unknown flags 0x%02x", ErrBadMeta, flags&^knownFlags)
	}
	switch b[3] {
	case roleCodePublisher:
		m.Role = RolePublisher
	case roleCodeSubscriber:
		m.Role = RoleSubscriber
	default:
		return m, fmt.Errorf("%w: role code %d", ErrBadMeta, b[3])
	}
	m.Version = b[4]
	m.Leaving = flags&flagLeaving != 0

	r := metaReader{b: b, off: headerLen}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"NodeID", &m.NodeID},
		{"PubEndpoint", &m.PubEndpoint},
		{"SyncEndpoint", &m.SyncEndpoint},
		{"RecoveryEndpoint", &m.RecoveryEndpoint},
	} {
		s, err := r.str(f.name)
		if err != nil {
			return Meta{}, err
		}
		*f.dst = s
	}
	if flags&flagTopicsDigest != 0 {
		d, err := r.take(len(m.TopicsDigest), "TopicsDigest")
		if err != nil {
			return Meta{}, err
		}
		copy(m.TopicsDigest[:], d)
		m.TopicsTruncated = true
	} else {
		c, err := r.take(1, "topic count")
		if err != nil {
			return Meta{}, err
		}
		if n := int(c[0]); n > 0 {
			m.Topics = make([]string, 0, n)
			for i := range n {
				t, err := r.str(fmt.Sprintf("Topics[%d]", i))
				if err != nil {
					return Meta{}, err
				}
				m.Topics = append(m.Topics, t)
			}
		}
	}
	if r.off != len(b) {
		return Meta{}, fmt.Errorf("%w: %d trailing bytes", ErrBadMeta, len(b)-r.off)
	}
	if err := m.validate(); err != nil {
		if !errors.Is(err, ErrBadMeta) {
			err = fmt.Errorf("%w: %w", ErrBadMeta, err)
		}
		return Meta{}, err
	}
	return m, nil
}

// metaReader reads length-prefixed fields with bounds checks.
type metaReader struct {
	b   []byte
	off int
}

// take returns the next n bytes, or an ErrBadMeta error naming what was
// being read.
func (r *metaReader) take(n int, what string) ([]byte, error) {
	if n < 0 || len(r.b)-r.off < n {
		return nil, fmt.Errorf("%w: %s: need %d bytes at offset %d, have %d", ErrBadMeta, what, n, r.off, len(r.b)-r.off)
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

// str reads a one-byte length and that many bytes as a string.
func (r *metaReader) str(what string) (string, error) {
	l, err := r.take(1, what+" length")
	if err != nil {
		return "", err
	}
	s, err := r.take(int(l[0]), what)
	if err != nil {
		return "", err
	}
	return string(s), nil
}

// roleCode maps a valid Role to its wire code.
func roleCode(r Role) byte {
	if r == RolePublisher {
		return roleCodePublisher
	}
	return roleCodeSubscriber
}
