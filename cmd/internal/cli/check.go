package cli

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/proto/handshake"
)

// PrintSettings writes every resolved setting, its value and where the
// value came from, then "configuration OK": the output of --check-config.
func PrintSettings(w io.Writer, r *Resolved) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tFROM")
	for _, s := range r.Settings {
		from := s.Source
		if s.From != "" {
			from = describeOrigin(s.Source, s.From)
		}
		value := s.Value
		if value == "" {
			value = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, value, from)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "configuration OK")
	return err
}

// Checks collects a command's configuration problems, each named by its
// flag, so that one run (or --check-config) reports all of them. The
// checks that return a bool report whether the value is fine, so that
// the caller passes only good values on to a library, whose Validate
// would otherwise report the same problem again under its field's name.
type Checks struct {
	problems []error
}

// Add records problems; nil ones are skipped.
func (c *Checks) Add(errs ...error) {
	for _, err := range errs {
		if err != nil {
			c.problems = append(c.problems, err)
		}
	}
}

// AtLeast checks that the duration setting key is at least least.
func (c *Checks) AtLeast(key string, d, least time.Duration) bool {
	if d < least {
		c.Add(fmt.Errorf("%s: %v is below %v", key, d, least))
		return false
	}
	return true
}

// SizeAtLeast checks that the size setting key is at least least; from
// names the setting least comes from, if any.
func (c *Checks) SizeAtLeast(key string, b, least Bytes, from ...string) bool {
	if b < least {
		msg := fmt.Sprintf("%s: %v is below %v", key, b, least)
		if len(from) > 0 {
			msg += " (" + from[0] + ")"
		}
		c.Add(errors.New(msg))
		return false
	}
	return true
}

// Topics checks a list of topics to publish on: at least one, none
// listed twice, each 1 to 255 bytes of UTF-8 without control
// characters and not starting with the zero byte (a publisher refuses to
// publish other topics, since the handshake names topics in JSON).
func (c *Checks) Topics(key string, topics []string) bool {
	ok := true
	bad := func(err error) {
		c.Add(fmt.Errorf("%s: %v", key, err))
		ok = false
	}
	if len(topics) == 0 {
		bad(errors.New("at least one topic is needed"))
	}
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		if err := envelope.CheckTopic([]byte(t), envelope.KindData, envelope.Limits{}); err != nil {
			bad(err)
		} else if err := handshake.CheckTopic(t); err != nil {
			bad(handshakeReason(err))
		} else if seen[t] {
			bad(fmt.Errorf("%q is listed twice", t))
		}
		seen[t] = true
	}
	return ok
}

// Prefixes checks a list of topic prefixes to subscribe to: each at most
// 255 bytes of UTF-8 without control characters (a prefix with one
// matches no topic a publisher may publish) and not starting with the
// zero byte; an empty prefix matches every topic.
func (c *Checks) Prefixes(key string, prefixes []string) bool {
	ok := true
	for _, p := range prefixes {
		var err error
		switch {
		case len(p) > envelope.DefaultLimits.MaxTopic:
			err = fmt.Errorf("%q is %d bytes, more than a topic's %d", p, len(p), envelope.DefaultLimits.MaxTopic)
		case p != "" && p[0] == 0:
			err = fmt.Errorf("%q starts with the reserved zero byte", p)
		default:
			if herr := handshake.CheckTopic(p); herr != nil {
				err = handshakeReason(herr)
			}
		}
		if err != nil {
			c.Add(fmt.Errorf("%s: %v", key, err))
			ok = false
		}
	}
	return ok
}

// handshakeReason is a handshake check's message without its wire code.
func handshakeReason(err error) error {
	var he *handshake.Error
	if errors.As(err, &he) {
		return errors.New(he.Msg)
	}
	return err
}

// Err returns every problem as one UsageError, or nil.
func (c *Checks) Err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &UsageError{Err: errors.Join(c.problems...)}
}
