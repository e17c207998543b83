package membership

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// ParseKey decodes a gossip encryption key written in standard base64, as
// produced by GenerateKey or "consul keygen" (padding optional, surrounding
// white space ignored). The key must decode to 16, 24 or 32 bytes. Errors
// wrap ErrBadKey and give the decoded length.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadKey)
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		var rawErr error
		key, rawErr = base64.RawStdEncoding.DecodeString(s)
		if rawErr != nil {
			return nil, fmt.Errorf("%w: not standard base64: %v", ErrBadKey, err)
		}
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

// GenerateKey returns a new random 32-byte (AES-256) key in the base64 form
// ParseKey reads.
func GenerateKey() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("membership: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// checkKey accepts nil (no encryption) and keys of 16, 24 or 32 bytes.
func checkKey(key []byte) error {
	switch len(key) {
	case 0, 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%w: %d bytes, want 16, 24 or 32 (AES-128, AES-192 or AES-256)", ErrBadKey, len(key))
}
