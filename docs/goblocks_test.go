package docs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// fragmentImports are the packages a Go fragment may name without
// importing them: this module's public packages and the standard ones
// the documents use.
var fragmentImports = map[string]string{
	"coord":      "github.com/syncmq/syncmq/coord",
	"envelope":   "github.com/syncmq/syncmq/envelope",
	"journal":    "github.com/syncmq/syncmq/journal",
	"membership": "github.com/syncmq/syncmq/membership",
	"metrics":    "github.com/syncmq/syncmq/metrics",
	"recovery":   "github.com/syncmq/syncmq/recovery",
	"diagnose":   "github.com/syncmq/syncmq/diagnose",
	"zap":        "go.uber.org/zap",
	"context":    "context",
	"errors":     "errors",
	"fmt":        "fmt",
	"log":        "log",
	"os":         "os",
	"syscall":    "syscall",
	"time":       "time",
	"tls":        "crypto/tls",
	"x509":       "crypto/x509",
}

// TestGoBlocks type-checks every go block of README.md and docs/*.md
// (see doc.go), so that what a reader copies compiles against the
// packages as they are.
func TestGoBlocks(t *testing.T) {
	root := repoRoot(t)
	var blocks []block
	for _, b := range allBlocks(t) {
		if b.lang == "go" {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) < 3 {
		t.Fatalf("found %d go blocks: README.md, durability.md and membership.md have some", len(blocks))
	}
	var extra []string // what whole files import
	for _, b := range blocks {
		if f, err := parser.ParseFile(token.NewFileSet(), "block.go", b.text, parser.ImportsOnly); err == nil && isWholeFile(b.text) {
			for _, spec := range f.Imports {
				extra = append(extra, strings.Trim(spec.Path.Value, `"`))
			}
		}
	}
	imp := exportImporter(t, root, extra...)
	for _, b := range blocks {
		t.Run(b.String(), func(t *testing.T) {
			if b.skip != "" {
				t.Skip(b.skip)
			}
			src := b.text
			if !isWholeFile(src) {
				src = wrapFragment(b)
			}
			for _, err := range typeCheck(src, imp) {
				t.Errorf("%s: %v", b, err)
			}
			if t.Failed() {
				t.Logf("checked as:\n%s", numbered(src))
			}
		})
	}
}

// TestGoBlocksFailuresAreSeen: the check finds a wrong call and a
// missing variable in a fragment, and accepts an unused one.
func TestGoBlocksFailuresAreSeen(t *testing.T) {
	imp := exportImporter(t, repoRoot(t))
	for _, tc := range []struct {
		text, given string
		want        string // "" passes
	}{
		{"pub, err := coord.NewPublisher(coord.DefaultPublisherConfig())\n", "", ""},
		{"pub.Close(ctx)\n", "pub *coord.Publisher, ctx context.Context", "too many arguments"},
		{"sub.Close()\n", "", "undefined: sub"},
		{"x := 1 +\n", "", "expected operand"},
	} {
		src := wrapFragment(block{file: "t.md", line: 1, lang: "go", text: tc.text, given: tc.given})
		errs := typeCheck(src, imp)
		got := fmt.Sprint(errs)
		if (tc.want == "") != (len(errs) == 0) || !strings.Contains(got, tc.want) {
			t.Errorf("%q: errors %v, want %q", tc.text, got, tc.want)
		}
	}
}

var packageClause = regexp.MustCompile(`(?m)^package \w+`)

func isWholeFile(src string) bool { return packageClause.MatchString(src) }

// wrapFragment makes a fragment a file: every fragment import in scope,
// the fragment the body of a function whose parameters it was given.
func wrapFragment(b block) string {
	var sb strings.Builder
	sb.WriteString("package fragment\n\nimport (\n")
	names := make([]string, 0, len(fragmentImports))
	for name := range fragmentImports {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&sb, "\t%s %q\n", name, fragmentImports[name])
	}
	fmt.Fprintf(&sb, ")\n\nfunc fragment(%s) {\n%s}\n", b.given, b.text)
	return sb.String()
}

// typeCheck parses and type-checks one file; unused variables and
// imports are not errors here (a fragment shows a call, not a program).
func typeCheck(src string, imp types.Importer) []error {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "block.go", src, parser.AllErrors)
	if err != nil {
		return []error{err}
	}
	var errs []error
	conf := types.Config{Importer: imp, Error: func(err error) {
		var te types.Error
		if asTypesError(err, &te) && te.Soft && (strings.Contains(te.Msg, "declared and not used") || strings.Contains(te.Msg, "imported and not used")) {
			return
		}
		errs = append(errs, err)
	}}
	_, _ = conf.Check("fragment", fset, []*ast.File{f}, nil)
	return errs
}

func asTypesError(err error, te *types.Error) bool {
	e, ok := err.(types.Error)
	if ok {
		*te = e
	}
	return ok
}

// exportImporter imports packages from the export data the go command
// builds (go list -export) for the fragment imports, extra and what they
// import.
func exportImporter(t testing.TB, root string, extra ...string) types.Importer {
	t.Helper()
	args := []string{"list", "-export", "-deps", "-json=ImportPath,Export"}
	for _, path := range fragmentImports {
		args = append(args, path)
	}
	args = append(args, extra...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.String())
	}
	exports := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct{ ImportPath, Export string }
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
	}
	return importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		f := exports[path]
		if f == "" {
			return nil, fmt.Errorf("%s is not a package the documents may import", path)
		}
		return os.Open(f)
	})
}

func numbered(src string) string {
	lines := strings.Split(src, "\n")
	for i := range lines {
		lines[i] = fmt.Sprintf("%3d  %s", i+1, lines[i])
	}
	return strings.Join(lines, "\n")
}
