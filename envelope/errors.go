package envelope

import "errors"

// Decode errors. Every error Decode returns wraps exactly one of these, so
// callers can count bad input by cause with errors.Is.
var (
	// ErrFrameCount means the message did not have exactly three frames.
	ErrFrameCount = errors.New("envelope: wrong frame count")
	// ErrHeaderSize means frame 1 was not HeaderSize bytes long.
	ErrHeaderSize = errors.New("envelope: wrong header size")
	// ErrMagic means the header did not start with the protocol magic.
	ErrMagic = errors.New("envelope: bad magic")
	// ErrVersion means the header carries a protocol version this code does not speak.
	ErrVersion = errors.New("envelope: unsupported version")
	// ErrKind means the header carries an unknown message kind.
	ErrKind = errors.New("envelope: unknown kind")
	// ErrFlags means the header sets flags that are unknown or invalid for its kind.
	ErrFlags = errors.New("envelope: bad flags")
	// ErrTopic means the topic is empty, too long, or reserved.
	ErrTopic = errors.New("envelope: bad topic")
	// ErrPayloadSize means the payload is larger than the limit or does
	// not match the length in the header.
	ErrPayloadSize = errors.New("envelope: bad payload size")
	// ErrChecksum means the payload's CRC-32C does not match the header.
	ErrChecksum = errors.New("envelope: checksum mismatch")
	// ErrRecords means a batch payload does not hold exactly Count well-formed records.
	ErrRecords = errors.New("envelope: bad batch records")
	// ErrSequence means a message that must carry a sequence number carries 0,
	// a control message carries one that is not 0, or a batch would run past
	// the largest sequence number.
	ErrSequence = errors.New("envelope: bad sequence")
	// ErrTable means a heartbeat or END payload is not a well-formed topic table.
	ErrTable = errors.New("envelope: bad topic table")
	// ErrLoss: a LOSS payload is malformed.
	ErrLoss = errors.New("envelope: bad LOSS")
)

// ErrIndex means the index frame of a MULTI message is malformed: its
// topic table is empty or truncated, or a record names no entry.
var ErrIndex = errors.New("envelope: bad MULTI index")
