package settings

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncmq/syncmq/cmd/internal/cli"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConfigurationDoc fails when docs/configuration.md differs from what
// the settings structs generate; -update rewrites it.
func TestConfigurationDoc(t *testing.T) {
	var buf bytes.Buffer
	WriteDoc(&buf)
	path := filepath.Join("..", "..", "..", "docs", "configuration.md")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, buf.Bytes()) {
		t.Fatalf("%s is out of date: run go test ./cmd/internal/settings -run TestConfigurationDoc -update", path)
	}
}

// TestEveryNumberHasAUnit keeps the docs' unit column filled and every
// setting described.
func TestEveryNumberHasAUnit(t *testing.T) {
	for _, c := range Commands() {
		for _, f := range cli.Fields(c.Defaults) {
			if (f.Kind == "int" || f.Kind == "float") && f.Unit == "" {
				t.Errorf("%s --%s: a number without a unit tag", c.Path, f.Key)
			}
			if f.Help == "" {
				t.Errorf("%s --%s: no help", c.Path, f.Key)
			}
		}
	}
}
