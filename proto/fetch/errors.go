package fetch

import (
	"errors"
	"strings"
)

// ErrMalformed is wrapped by every error DecodeRequest, DecodeManyRequest
// and DecodeResponse return, so "is this bad input?" is a single errors.Is check. Each such
// error also wraps exactly one of the more specific decode sentinels below.
var ErrMalformed = errors.New("fetch: malformed message")

// Decode sentinels. Every decode error is a *DecodeError that wraps
// ErrMalformed and exactly one of these.
var (
	// ErrFrameCount means a response did not have the number of frames its type requires.
	ErrFrameCount = errors.New("fetch: wrong frame count")
	// ErrLength means a frame is shorter or longer than its type requires.
	ErrLength = errors.New("fetch: wrong frame length")
	// ErrMagic means a frame does not start with the magic "SR".
	ErrMagic = errors.New("fetch: bad magic")
	// ErrVersion means a frame carries a protocol version this code does not speak.
	ErrVersion = errors.New("fetch: unsupported version")
	// ErrType means a frame carries an unknown message type, or a request
	// type where a response was expected or vice versa.
	ErrType = errors.New("fetch: unknown message type")
	// ErrTopic means a request's topic is empty, too long or reserved.
	ErrTopic = errors.New("fetch: bad topic")
	// ErrRange means a sequence range is invalid: from is 0, to is below
	// from, or a DONE's (or DONE_MANY entry's) first held sequence is above
	// its last sequence.
	ErrRange = errors.New("fetch: bad sequence range")
	// ErrCount means a FETCH_MANY or DONE_MANY carries no entries or more
	// than MaxManyEntries.
	ErrCount = errors.New("fetch: bad entry count")
	// ErrStatus means a DONE or DONE_MANY carries an unknown status.
	ErrStatus = errors.New("fetch: unknown status")
	// ErrText means an ERROR's message is longer than MaxErrorText bytes or not UTF-8.
	ErrText = errors.New("fetch: bad error text")
	// ErrEnvelope means the envelope frames of a REPLAY did not decode; the
	// envelope package's error is wrapped too.
	ErrEnvelope = errors.New("fetch: bad replayed envelope")
	// ErrNotReplay means a REPLAY's envelope is not a DATA message with FlagReplay set.
	ErrNotReplay = errors.New("fetch: envelope is not a replay")
)

// DecodeError is the type of every error DecodeRequest, DecodeManyRequest
// and DecodeResponse return. errors.Is matches it against ErrMalformed, against Kind, and
// against Cause (so an envelope decode error is matchable with the envelope
// package's sentinels too).
type DecodeError struct {
	// Kind is the specific sentinel, e.g. ErrLength.
	Kind error
	// Detail says what exactly was wrong, for humans.
	Detail string
	// Cause is an underlying error, e.g. from envelope.Decode, or nil.
	Cause error
}

// Error returns "fetch: <kind>: <detail>[: <cause>]".
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns ErrMalformed, Kind and, when set, Cause.
func (e *DecodeError) Unwrap() []error {
	if e.Cause != nil {
		return []error{ErrMalformed, e.Kind, e.Cause}
	}
	return []error{ErrMalformed, e.Kind}
}

func decodeErr(kind error, detail string) error {
	return &DecodeError{Kind: kind, Detail: detail}
}
