package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type color string

func (color) Choices() []string { return []string{"red", "green"} }

type testSettings struct {
	Name    string        `mapstructure:"name" help:"a name"`
	Count   int           `mapstructure:"count" unit:"things" help:"how many"`
	Rate    float64       `mapstructure:"rate" unit:"things/s" help:"how fast"`
	Wait    time.Duration `mapstructure:"wait" help:"how long"`
	On      bool          `mapstructure:"on" help:"whether"`
	Tags    []string      `mapstructure:"tags" help:"labels"`
	Color   color         `mapstructure:"color" help:"which"`
	Size    Bytes         `mapstructure:"size" unit:"bytes" help:"how big"`
	Secret  string        `mapstructure:"secret" secret:"true" help:"shh"`
	Check   bool          `mapstructure:"check" only:"flag" help:"check only"`
	Common  Common        `mapstructure:",squash"`
	Default bool          `mapstructure:"default-true" help:"on unless turned off"`
}

func defaults() testSettings {
	return testSettings{Name: "n", Count: 3, Wait: time.Second, Tags: []string{"a"}, Color: "red", Size: 64 << 20, Common: DefaultCommon(), Default: true}
}

const prefix = "CLITEST"

// load runs Load as a command would, with args, env (KEY=value) and a
// config file holding yaml ("" for none).
func load(t *testing.T, args []string, env []string, yaml string) (testSettings, *Resolved, error) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if yaml != "" {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	d := defaults()
	var got testSettings
	var r *Resolved
	var loadErr error
	cmd := &cobra.Command{Use: "x", SilenceErrors: true, SilenceUsage: true, RunE: func(cmd *cobra.Command, _ []string) error {
		got = defaults()
		r, loadErr = Load(cmd, prefix, &got)
		return nil
	}}
	AddFlags(cmd.Flags(), &d)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("execute: %v", err)
	}
	return got, r, loadErr
}

func TestLoadDefaults(t *testing.T) {
	got, r, err := load(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := defaults()
	if got.Name != want.Name || got.Count != 3 || got.Wait != time.Second || strings.Join(got.Tags, ",") != "a" || got.Color != "red" || !got.Default {
		t.Fatalf("got %+v", got)
	}
	for _, s := range r.Settings {
		if s.Source != SourceDefault {
			t.Errorf("%s from %s", s.Key, s.Source)
		}
	}
}

// TestLoadPrecedence: flag > environment > file > default, per key.
func TestLoadPrecedence(t *testing.T) {
	got, r, err := load(t,
		[]string{"--count", "10"},
		[]string{"CLITEST_COUNT=20", "CLITEST_NAME=from-env"},
		"count: 30\nname: from-file\nwait: 1m\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 10 || got.Name != "from-env" || got.Wait != time.Minute || got.Color != "red" {
		t.Fatalf("got %+v", got)
	}
	for key, want := range map[string]string{"count": SourceFlag, "name": SourceEnv, "wait": SourceFile, "color": SourceDefault} {
		if src := r.Source(key); src != want {
			t.Errorf("%s from %s, want %s", key, src, want)
		}
	}
	if !r.IsSet("wait") || r.IsSet("color") {
		t.Error("IsSet disagrees with the sources")
	}
}

func TestLoadValues(t *testing.T) {
	got, _, err := load(t,
		[]string{"--tags", "x, y", "--tags", "z", "--on", "--default-true=false", "--rate", "2.5", "--wait", "0"},
		[]string{"CLITEST_COLOR=green"},
		"")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Tags, "|") != "x|y|z" || !got.On || got.Default || got.Rate != 2.5 || got.Wait != 0 || got.Color != "green" {
		t.Fatalf("got %+v", got)
	}
	got, _, err = load(t, nil, nil, "tags: [p, q]\ncount: 1e3\nname: 42\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Tags, "|") != "p|q" || got.Count != 1000 || got.Name != "42" {
		t.Fatalf("got %+v", got)
	}
	got, _, err = load(t, []string{"--tags", ""}, nil, "")
	if err != nil || len(got.Tags) != 0 {
		t.Fatalf("an empty list flag gave %q, %v", got.Tags, err)
	}
}

// TestLoadReportsEveryProblem: every bad value, from every source, and
// every unknown key is reported at once, each on its own line naming
// where it came from.
func TestLoadReportsEveryProblem(t *testing.T) {
	_, _, err := load(t,
		[]string{"--count", "-1", "--wait", "soon", "--color", "blue"},
		[]string{"CLITEST_RATE=fast", "CLITEST_ON=maybe"},
		"bogus: 1\nlog-level: loud\nwait: 5\ncheck: true\n")
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("err %v is not a UsageError", err)
	}
	msg := err.Error()
	want := []string{
		"count: -1 is negative (flag --count)",
		`wait: "soon" is not a duration like 30s or 1m30s (flag --wait)`,
		`color: "blue" is not one of red, green (flag --color)`,
		`rate: "fast" is not a number (environment CLITEST_RATE)`,
		`on: "maybe" is not true or false (environment CLITEST_ON)`,
		`unknown key "bogus"`,
		`log-level: "loud" is not one of debug, info, warn, error (file `,
		"check can only be given as a flag",
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != len(want) {
		t.Errorf("%d lines, want %d:\n%s", n, len(want), msg)
	}
}

func TestLoadBadFile(t *testing.T) {
	_, _, err := load(t, nil, nil, "count: [1\n")
	if CodeOf(err) != ExitUsage || !strings.Contains(err.Error(), "config ") {
		t.Fatalf("err %v", err)
	}
	_, _, err = load(t, []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, nil, "")
	if CodeOf(err) != ExitUsage || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSecretNotPrinted(t *testing.T) {
	_, r, err := load(t, nil, []string{"CLITEST_SECRET=hunter2"}, "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := PrintSettings(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "hunter2") || !strings.Contains(b.String(), "(set)") || !strings.HasSuffix(b.String(), "configuration OK\n") {
		t.Fatalf("check-config output:\n%s", b.String())
	}
}

func TestFieldsPanicsOnUntagged(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a field without a tag")
		}
	}()
	Fields(&struct{ X int }{})
}

func TestEnvName(t *testing.T) {
	if got := EnvName("SYNCPUB", "quorum-timeout"); got != "SYNCPUB_QUORUM_TIMEOUT" {
		t.Fatal(got)
	}
}
