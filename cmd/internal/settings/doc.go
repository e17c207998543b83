package settings

import (
	"fmt"
	"io"

	"github.com/syncmq/syncmq/cmd/internal/cli"
)

// WriteDoc writes docs/configuration.md: how settings are resolved, the
// exit codes, and a table of every setting of every command.
func WriteDoc(w io.Writer) {
	fmt.Fprint(w, docIntro)
	fmt.Fprintln(w, "## Exit codes")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "This is the one list of the exit codes; `--help` prints the same, and the")
	fmt.Fprintln(w, "other documents link here.")
	fmt.Fprintln(w)
	writeExitCodes(w, "syncpub", PublisherExitCodes)
	writeExitCodes(w, "syncsub", SubscriberExitCodes)
	fmt.Fprintln(w, "`syncsub diagnose` exits 1 when a step of the flowchart fails, `syncpub demo`")
	fmt.Fprintln(w, "when a stage did not behave as expected, and `syncpub bench` when a subscriber")
	fmt.Fprintln(w, "missed messages or a process failed.")
	fmt.Fprintln(w, "Every exit other than 0 prints a one-line reason on stderr (bad configuration:")
	fmt.Fprintln(w, "one line per problem).")
	for _, c := range Commands() {
		fmt.Fprintf(w, "\n## %s\n\n%s\n\n", c.Path, c.Summary)
		cli.WriteSettingsTable(w, c.Prefix, c.Defaults)
	}
}

func writeExitCodes(w io.Writer, name string, codes []cli.ExitCode) {
	fmt.Fprintf(w, "`%s`:\n\n| code | meaning |\n|---|---|\n", name)
	for _, c := range codes {
		fmt.Fprintf(w, "| %d | %s |\n", c.Code, c.Meaning)
	}
	fmt.Fprintln(w)
}

const docIntro = `# Configuration

<!-- Generated from cmd/internal/settings by
     go test ./cmd/internal/settings -run TestConfigurationDoc -update
     Edit the settings structs, not this file. -->

Every setting of ` + "`syncpub`" + ` and ` + "`syncsub`" + ` can be given in four ways; the first
that is set wins:

1. a flag: ` + "`--quorum-timeout 30s`" + `;
2. an environment variable, named by the command's prefix (` + "`SYNCPUB_`" + `,
   ` + "`SYNCSUB_`" + `) and the key in upper case with underscores for dashes:
   ` + "`SYNCPUB_QUORUM_TIMEOUT=30s`" + ` (an empty variable counts as unset);
3. the YAML file given with ` + "`--config`" + `, whose keys are the flag names:
   ` + "`quorum-timeout: 30s`" + `;
4. the default.

Subcommands share their command's prefix: ` + "`SYNCPUB_COUNT`" + ` sets the count of
` + "`syncpub`" + `, ` + "`syncpub demo`" + ` and ` + "`syncpub bench`" + ` alike. ` + "`--config`" + ` and
` + "`--check-config`" + ` are flags only.

Values: durations need a unit (` + "`500ms`" + `, ` + "`30s`" + `, ` + "`1m30s`" + `; a bare ` + "`0`" + ` is zero);
sizes take one too: ` + "`64KiB`" + `, ` + "`256MiB`" + `, ` + "`1.5GiB`" + ` (powers of 1024), ` + "`100MB`" + `
(powers of 1000), or bytes (` + "`4096`" + `, ` + "`4096B`" + `), in any case; a rate in bytes/s is
a size per second (` + "`16MiB`" + `). Numbers, durations and sizes are never negative,
and the ones a command cannot work with are refused, with their floor
(` + "`--slow-timeout 1ns`" + `: "slow-timeout: 1ns is below 100ms"). Lists are comma-separated (in a
flag, a variable or the file) or a YAML list, and a repeated flag adds to
the list; booleans are ` + "`true`" + ` or ` + "`false`" + `, and a boolean flag alone means
` + "`true`" + `.

A key in the file that is no setting is an error, and so is every bad
value wherever it comes from, and a word that is not a flag: the command
lists every problem, one per line, naming the flag, variable or file it
came from, and exits 2. ` + "`--check-config`" + ` finds the same problems as a run
does (only an address or directory in use by another process shows at
run time, and exits 2 as well); without any, it prints every resolved
setting, its value and where it came from, and exits 0 (a gossip key
shows as ` + "`(set)`" + `). [examples/](examples/) has
a commented file for each command. ` + "`--version`" + ` prints the module version,
the VCS revision the binary was built from and the Go version.

`
