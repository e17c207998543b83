package cli

import (
	"errors"
	"net"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// NoArgs is a cobra Args check for commands that take flags only: a
// stray word is a usage error (exit 2) naming it, and, on a command with
// subcommands, listing them.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var subs []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			subs = append(subs, c.Name())
		}
	}
	if len(subs) > 0 {
		return Usagef("unknown command %q for %q (commands: %s; flags start with --)", args[0], cmd.CommandPath(), strings.Join(subs, ", "))
	}
	return Usagef("unexpected argument %q: %s takes flags only (see --help)", args[0], cmd.CommandPath())
}

// UnusableAddress reports whether err says that an address to listen on
// cannot be used: in use, not an address of this host, or refused by the
// system. The commands exit 2 for it, as for any setting they cannot use.
func UnusableAddress(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "listen" {
		return true
	}
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EACCES)
}

// StartError turns an error starting a command's component into the
// error to exit with: a UsageError when the configuration names an
// address that cannot be used, or when unusable says the error is the
// configuration's (what makes the command stop before doing anything),
// else err unchanged.
func StartError(err error, unusable bool) error {
	if err == nil {
		return nil
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return err
	}
	if unusable || UnusableAddress(err) {
		return &UsageError{Err: err}
	}
	return err
}
