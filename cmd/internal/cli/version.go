package cli

import (
	"runtime/debug"
	"strings"
)

// Version describes the running binary: its module version, the VCS
// revision it was built from (with "modified" when the tree had changes)
// and the Go version. A binary built without module information says
// "(devel)".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return FormatVersion(bi)
}

// FormatVersion renders bi as Version does.
func FormatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	var extra []string
	if rev != "" {
		r := "revision " + rev
		if modified == "true" {
			r += ", modified"
		}
		extra = append(extra, r)
	}
	if bi.GoVersion != "" {
		extra = append(extra, bi.GoVersion)
	}
	if len(extra) > 0 {
		v += " (" + strings.Join(extra, ", ") + ")"
	}
	return v
}
