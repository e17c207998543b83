package membership

import (
	"errors"
	"strings"
)

// Sentinel errors. Errors returned by this package wrap one of these (and
// sometimes also the underlying cause), so callers can test for them with
// errors.Is.
var (
	// ErrBadMeta means metadata is malformed: a peer sent bytes that do
	// not decode, or a Meta value has an invalid field (role, endpoint
	// syntax, non-UTF-8 text, ...).
	ErrBadMeta = errors.New("membership: bad metadata")

	// ErrMetaTooLarge means metadata does not fit: a string field is longer
	// than MaxFieldLen, or the encoding exceeds MetaMaxSize even with the
	// topic list replaced by its digest. Decoding input longer than
	// MetaMaxSize reports both ErrBadMeta and ErrMetaTooLarge.
	ErrMetaTooLarge = errors.New("membership: metadata too large")

	// ErrInvalidConfig means Config.Validate rejected a field; the message
	// names the field.
	ErrInvalidConfig = errors.New("membership: invalid config")

	// ErrBadKey means a gossip encryption key has the wrong length or is
	// not valid base64.
	ErrBadKey = errors.New("membership: bad gossip key")

	// ErrNoSeeds means Join was called with no seeds and Config.Join is empty.
	ErrNoSeeds = errors.New("membership: no seeds to join")

	// ErrJoinFailed means Join reached none of its seeds. The returned
	// error is a *JoinError carrying the per-seed causes.
	ErrJoinFailed = errors.New("membership: join failed")

	// ErrKeyMismatch means a join failed because the peers do not share
	// this node's gossip encryption setup: different SecretKeys, or one
	// side encrypts and the other does not. It is wrapped together with
	// ErrJoinFailed.
	ErrKeyMismatch = errors.New("membership: gossip key mismatch or unencrypted peer")

	// ErrClosed means the Node has been shut down, or is leaving, and can
	// no longer Join or UpdateMeta.
	ErrClosed = errors.New("membership: node closed")
)

// chainError is an error whose message reads "<sentinel>: <detail>: <cause
// without its package prefix>" and that wraps both sentinel and cause.
type chainError struct {
	msg  string
	errs []error
}

func (e *chainError) Error() string   { return e.msg }
func (e *chainError) Unwrap() []error { return e.errs }

// chain returns an error wrapping sentinel and cause whose message does not
// repeat the "membership: " prefix of cause.
func chain(sentinel error, detail string, cause error) error {
	msg := sentinel.Error() + ": " + detail + ": " + strings.TrimPrefix(cause.Error(), "membership: ")
	return &chainError{msg: msg, errs: []error{sentinel, cause}}
}
