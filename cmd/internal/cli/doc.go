package cli

import (
	"fmt"
	"io"
	"strings"
)

// WriteSettingsTable writes a Markdown table of the settings struct that
// defaults points to: flag, environment variable, config-file key,
// default, unit and description.
func WriteSettingsTable(w io.Writer, prefix string, defaults any) {
	fmt.Fprintln(w, "| flag | environment | file key | default | unit | description |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, f := range Fields(defaults) {
		env, key := "`"+EnvName(prefix, f.Key)+"`", "`"+f.Key+"`"
		if f.Flag {
			env, key = "—", "—"
		}
		def := f.Format(defaults)
		if def == "" {
			def = "—"
		} else {
			def = "`" + def + "`"
		}
		help := f.Help
		if f.Kind == "choice" {
			help += "; one of " + codeList(f.Choices)
		}
		fmt.Fprintf(w, "| `--%s` | %s | %s | %s | %s | %s |\n", f.Key, env, key, def, unit(f), escapeCell(help))
	}
}

// unit is what the docs say a value is measured in or looks like.
func unit(f Field) string {
	switch f.Kind {
	case "duration":
		return "duration (`500ms`, `30s`, `1m`)"
	case "bytes":
		return f.Unit + " (`64KiB`, `256MiB`, `1GiB`)"
	case "bool":
		return "`true` or `false`"
	case "list":
		return "list"
	case "choice", "string":
		return ""
	}
	return f.Unit
}

func codeList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = "`" + s + "`"
	}
	return strings.Join(q, ", ")
}

func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}
