package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
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
