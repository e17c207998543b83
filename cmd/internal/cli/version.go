package cli

import (
	"runtime/debug"
	"strings"

	"github.com/syncmq/syncmq/metrics"
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
	b := buildOf(bi)
	v := b.Version
	var extra []string
	if b.Revision != "" {
		r, modified := strings.CutSuffix(b.Revision, "-modified")
		r = "revision " + r
		if modified {
			r += ", modified"
		}
		extra = append(extra, r)
	}
	if b.GoVersion != "" {
		extra = append(extra, b.GoVersion)
	}
	if len(extra) > 0 {
		v += " (" + strings.Join(extra, ", ") + ")"
	}
	return v
}

// Build describes the running binary for the syncmq_build_info metric.
func Build() metrics.Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return metrics.Build{Version: "(devel)"}
	}
	return buildOf(bi)
}

func buildOf(bi *debug.BuildInfo) metrics.Build {
	b := metrics.Build{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if b.Revision != "" && modified {
		b.Revision += "-modified"
	}
	return b
}
