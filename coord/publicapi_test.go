package coord_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// TestExportedAPIHasNoInternalTypes walks every exported name of coord
// and of the module's other public packages, and everything reachable
// from them through exported fields, methods, parameters and results,
// and fails on any type from an internal package: another module cannot
// name such a type, so a field or result of one is unusable outside this
// repository.
func TestExportedAPIHasNoInternalTypes(t *testing.T) {
	w := apiWalker{module: "github.com/syncmq/syncmq", seen: map[types.Type]bool{}}
	for _, path := range publicPackages(t) {
		pkg := importExported(t, path)
		for _, name := range pkg.Scope().Names() {
			obj := pkg.Scope().Lookup(name)
			if !obj.Exported() {
				continue
			}
			w.walk(pkg.Name()+"."+name, obj.Type())
		}
	}
	sort.Strings(w.found)
	for _, f := range w.found {
		t.Error(f)
	}
	if len(w.found) > 0 {
		t.Log("every type in an exported API must be importable by another module")
	}
}

// publicPackages lists the packages another module may import: every
// package of this module that is neither internal nor a command. coord's
// API reaches into most of them, and each must hold up on its own too.
func publicPackages(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.Name}}", "github.com/syncmq/syncmq/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, name, _ := strings.Cut(line, " ")
		if name != "main" && !isInternal(path) {
			pkgs = append(pkgs, path)
		}
	}
	if len(pkgs) < 8 {
		t.Fatalf("public packages %v: want coord, envelope, recovery, journal and the rest", pkgs)
	}
	return pkgs
}

// importExported loads path's type information from the export data the
// go command builds (go list -export), as golang.org/x/tools/go/packages
// does, without that dependency.
func importExported(t *testing.T, path string) *types.Package {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Export", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errorsAs(err, &ee) {
			t.Fatalf("go list -export: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list -export: %v", err)
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
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	pkg, err := imp.Import(path)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

func errorsAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	if ok {
		*target = ee
	}
	return ok
}

type apiWalker struct {
	module string
	seen   map[types.Type]bool
	found  []string
}

// walk reports every internal type reachable from typ, which where names.
func (w *apiWalker) walk(where string, typ types.Type) {
	if w.seen[typ] {
		return
	}
	w.seen[typ] = true
	switch t := typ.(type) {
	case *types.Named:
		obj := t.Obj()
		if obj.Pkg() != nil {
			path := obj.Pkg().Path()
			if isInternal(path) {
				w.found = append(w.found, fmt.Sprintf("%s: %s.%s is from an internal package", where, path, obj.Name()))
				return
			}
			if path != w.module && !strings.HasPrefix(path, w.module+"/") {
				return // another module's public type
			}
		}
		for i := 0; i < t.TypeArgs().Len(); i++ {
			w.walk(where, t.TypeArgs().At(i))
		}
		for i := 0; i < t.NumMethods(); i++ {
			if m := t.Method(i); m.Exported() {
				w.walk(where+"."+m.Name(), m.Type())
			}
		}
		w.walk(where, t.Underlying())
	case *types.Pointer:
		w.walk(where, t.Elem())
	case *types.Slice:
		w.walk(where, t.Elem())
	case *types.Array:
		w.walk(where, t.Elem())
	case *types.Map:
		w.walk(where, t.Key())
		w.walk(where, t.Elem())
	case *types.Chan:
		w.walk(where, t.Elem())
	case *types.Signature:
		for i := 0; i < t.Params().Len(); i++ {
			w.walk(where+"(param)", t.Params().At(i).Type())
		}
		for i := 0; i < t.Results().Len(); i++ {
			w.walk(where+"(result)", t.Results().At(i).Type())
		}
	case *types.Struct:
		for i := 0; i < t.NumFields(); i++ {
			if f := t.Field(i); f.Exported() {
				w.walk(where+"."+f.Name(), f.Type())
			}
		}
	case *types.Interface:
		for i := 0; i < t.NumMethods(); i++ {
			if m := t.Method(i); m.Exported() {
				w.walk(where+"."+m.Name(), m.Type())
			}
		}
	}
}

func isInternal(path string) bool {
	return strings.HasPrefix(path, "internal/") || strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")
}
