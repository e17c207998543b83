package membership

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Join contacts seeds ("host:port" each; nil means Config.Join) and
// exchanges full state with each one reached, which makes this node known
// to the cluster. It returns how many seeds were reached. It blocks until
// every seed has been tried (each attempt is bounded by the profile's TCP
// timeout, see Timings) or ctx is done; an attempt in progress when ctx
// ends finishes in the background and may still join.
//
// Join succeeds if any seed was reached. Otherwise the error is a
// *JoinError wrapping ErrJoinFailed, and also ErrKeyMismatch when the
// seeds rejected this node's gossip encryption or lack of it. Other
// errors: ErrNoSeeds, an invalid seed (ErrJoinFailed), ErrClosed, or ctx's
// error.
func (n *Node) Join(ctx context.Context, seeds []string) (int, error) {
	if len(seeds) == 0 {
		seeds = n.cfg.Join
	}
	if len(seeds) == 0 {
		return 0, ErrNoSeeds
	}
	for _, s := range seeds {
		if err := checkSeed(s); err != nil {
			return 0, fmt.Errorf("%w: seed %q: %v", ErrJoinFailed, s, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("membership: join: %w", err)
	}
	if err := n.begin(); err != nil {
		return 0, err
	}
	seeds = append([]string(nil), seeds...)

	type result struct {
		joined int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		defer n.ops.Done()
		var r result
		var errs []error
		for _, s := range seeds {
			if ctx.Err() != nil || isClosed(n.closing) {
				break
			}
			k, err := n.ml.Join([]string{s})
			r.joined += k
			if err != nil {
				errs = append(errs, err)
			}
		}
		r.err = errors.Join(errs...)
		res <- r
	}()

	select {
	case r := <-res:
		if r.joined > 0 {
			return r.joined, nil
		}
		if r.err == nil { // stopped before trying every seed
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("membership: join: %w", err)
			}
			return 0, ErrClosed
		}
		enc := len(n.cfg.SecretKey) > 0
		return 0, &JoinError{
			Seeds:       seeds,
			Encrypted:   enc,
			KeyMismatch: looksLikeKeyMismatch(r.err, enc),
			Err:         r.err,
		}
	case <-ctx.Done():
		return 0, fmt.Errorf("membership: join: %w", ctx.Err())
	}
}

// JoinError is returned by Join when no seed could be reached.
type JoinError struct {
	// Seeds are the seeds that were tried.
	Seeds []string
	// Encrypted says whether this node has a SecretKey.
	Encrypted bool
	// KeyMismatch says the failure looks like a gossip encryption mismatch:
	// a different key, or only one side encrypting.
	KeyMismatch bool
	// Err holds memberlist's error for each seed.
	Err error
}

// Error explains the failure, with a hint when keys look mismatched.
func (e *JoinError) Error() string {
	var b strings.Builder
	b.WriteString(ErrJoinFailed.Error())
	if e.KeyMismatch {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(ErrKeyMismatch.Error(), "membership: "))
		msg := ""
		if e.Err != nil {
			msg = e.Err.Error()
		}
		switch {
		case strings.Contains(msg, "remote state is not encrypted"):
			b.WriteString(" (this node encrypts gossip but the peer does not; every node needs the same SecretKey)")
		case !e.Encrypted:
			b.WriteString(" (the peer encrypts gossip but this node has no SecretKey)")
		default:
			b.WriteString(" (this node encrypts gossip; every node needs the same SecretKey)")
		}
	}
	fmt.Fprintf(&b, ": tried %s", strings.Join(e.Seeds, ", "))
	for i, msg := range errorTexts(e.Err) {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(msg)
	}
	return b.String()
}

// errorTexts returns the messages of the leaf errors inside err, which may
// nest errors.Join results and memberlist's multierror lists (whose own
// message spans several lines).
func errorTexts(err error) []string {
	var leaves []error
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ WrappedErrors() []error }:
		leaves = e.WrappedErrors()
	case interface{ Unwrap() []error }:
		leaves = e.Unwrap()
	default:
		return []string{strings.ReplaceAll(err.Error(), "\n", " ")}
	}
	var out []string
	for _, l := range leaves {
		out = append(out, errorTexts(l)...)
	}
	return out
}

// Unwrap returns ErrJoinFailed, ErrKeyMismatch if KeyMismatch is set, and
// Err.
func (e *JoinError) Unwrap() []error {
	errs := []error{ErrJoinFailed}
	if e.KeyMismatch {
		errs = append(errs, ErrKeyMismatch)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// looksLikeKeyMismatch reports whether memberlist's join error is about
// encryption. memberlist formats its errors with %v, so only the text is
// left: "No installed keys could decrypt the message", "encryption is
// configured but remote state is not encrypted", "remote state is
// encrypted and encryption is not configured". A peer that drops the
// connection (EOF) while this node encrypts is counted too.
func looksLikeKeyMismatch(err error, encrypted bool) bool {
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "crypt") {
		return true
	}
	return encrypted && (strings.Contains(msg, "eof") || strings.Contains(msg, "connection reset"))
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
