package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// commandLines returns the block's commands, one per line, with
// continuation lines joined and comments dropped.
func commandLines(text string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, " #"); i >= 0 && !strings.Contains(l[:i], "'") {
			l = l[:i]
		}
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if c, ok := strings.CutSuffix(strings.TrimRight(l, " "), "\\"); ok {
			cur += c + " "
			continue
		}
		if cur += l; strings.TrimSpace(cur) != "" {
			out = append(out, strings.TrimSpace(cur))
		}
		cur = ""
	}
	return out
}

var (
	helpOnce sync.Once
	helpErr  error
	flagSets map[string]map[string]bool // "syncpub", "syncpub demo", ... → flags
)

// commandFlags returns the flags of every command and subcommand, as
// their --help lists them.
func commandFlags(t *testing.T) map[string]map[string]bool {
	t.Helper()
	helpOnce.Do(func() {
		dir := buildDir(t)
		flagSets = map[string]map[string]bool{}
		flagRE := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`)
		for _, c := range []string{"syncpub", "syncpub demo", "syncpub bench", "syncpub relay", "syncsub", "syncsub diagnose"} {
			args := append(strings.Fields(c)[1:], "--help")
			out, err := exec.Command(filepath.Join(dir, strings.Fields(c)[0]), args...).Output()
			if err != nil {
				helpErr = err
				return
			}
			set := map[string]bool{}
			for _, m := range flagRE.FindAllStringSubmatch(string(out), -1) {
				set[m[1]] = true
			}
			flagSets[c] = set
		}
	})
	if helpErr != nil {
		t.Fatal(helpErr)
	}
	return flagSets
}

var separators = map[string]bool{"&": true, "&&": true, "|": true, "||": true, ";": true, "do": true, "then": true}

// checkCommandFlags reports every --flag given to syncpub or syncsub (and
// their subcommands) in line that the command does not have.
func checkCommandFlags(t *testing.T, b block, line string) {
	sets := commandFlags(t)
	words := strings.Fields(strings.NewReplacer(`"`, " ", "'", " ", "$(", " ", ")", " ").Replace(line))
	for i := 0; i < len(words); i++ {
		name := filepath.Base(words[i])
		if name != "syncpub" && name != "syncsub" {
			continue
		}
		cmd := name
		if i+1 < len(words) && sets[name+" "+words[i+1]] != nil {
			cmd = name + " " + words[i+1]
			i++
		}
		for i++; i < len(words) && !separators[words[i]]; i++ {
			w := strings.TrimRight(words[i], ";&")
			if f, ok := strings.CutPrefix(w, "--"); ok {
				f, _, _ = strings.Cut(f, "=")
				if !sets[cmd][f] && f != "help" && f != "version" {
					t.Errorf("%v: %s has no flag --%s: %s", b, cmd, f, line)
				}
			}
			if w != words[i] {
				break
			}
		}
		i--
	}
}

var goTestRE = regexp.MustCompile(`^(?:[A-Z_]+=\S+ )*go test (.*)$`)

// checkGoTest reports a fuzzing run without -fuzztime (it never ends)
// and a -run, -bench or -fuzz pattern that matches no function of the
// packages named.
func checkGoTest(t *testing.T, b block, root, line string) {
	m := goTestRE.FindStringSubmatch(line)
	if m == nil {
		return
	}
	args := strings.Fields(m[1])
	var pkgs []string
	patterns := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := strings.Trim(args[i], "'\"")
		switch a {
		case "-run", "-bench", "-fuzz":
			if i+1 < len(args) {
				patterns[a] = strings.Trim(args[i+1], "'\"")
				i++
			}
		default:
			if strings.HasPrefix(a, "./") {
				pkgs = append(pkgs, a)
			}
		}
	}
	if _, fuzz := patterns["-fuzz"]; fuzz && !strings.Contains(line, "-fuzztime") {
		t.Errorf("%v: a fuzzing run without -fuzztime never ends: %s", b, line)
	}
	kinds := map[string]string{"-run": "(?:Test|Example)", "-bench": "Benchmark", "-fuzz": "Fuzz"}
	for flag, pat := range patterns {
		if pat == "^$" || pat == "." {
			continue
		}
		first, _, _ := strings.Cut(pat, "/") // the top-level name; subtests are not checked
		re, err := regexp.Compile(first)
		if err != nil {
			t.Errorf("%v: %s %q is not a regular expression: %v", b, flag, pat, err)
			continue
		}
		found := false
		for _, p := range pkgs {
			files, _ := filepath.Glob(filepath.Join(root, strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/"), "*_test.go"))
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, fn := range regexp.MustCompile(`(?m)^func (`+kinds[flag]+`\w*)\(`).FindAllStringSubmatch(string(src), -1) {
					found = found || re.MatchString(fn[1])
				}
			}
		}
		if len(pkgs) > 0 && !found {
			t.Errorf("%v: %s %q matches nothing in %v: %s", b, flag, pat, pkgs, line)
		}
	}
}

// checkGoInstall reports a go install of a command the module does not
// have.
func checkGoInstall(t *testing.T, b block, root, line string) {
	args, ok := strings.CutPrefix(line, "go install ")
	if !ok {
		return
	}
	for _, a := range strings.Fields(args) {
		path, _, _ := strings.Cut(a, "@")
		rel, ok := strings.CutPrefix(path, "github.com/syncmq/syncmq/")
		if !ok {
			continue
		}
		if src, err := os.ReadFile(filepath.Join(root, rel, "main.go")); err != nil || !strings.Contains(string(src), "package main") {
			t.Errorf("%v: go install %s: no command at %s", b, path, rel)
		}
	}
}

// TestShellBlocksStatic checks every shell block, run or skipped, without
// running it: the flags it gives syncpub and syncsub exist, its go test
// patterns name tests that exist, fuzzing runs end, and go install names
// the commands of this module.
func TestShellBlocksStatic(t *testing.T) {
	root := repoRoot(t)
	n := 0
	for _, b := range allBlocks(t) {
		if !b.runnable() {
			continue
		}
		n++
		inModule := true
		for _, l := range commandLines(b.text) {
			if strings.HasPrefix(l, "cd ") {
				inModule = false // another module (bench/peers): its tests are its own
			}
			checkCommandFlags(t, b, l)
			if inModule {
				checkGoTest(t, b, root, l)
			}
			checkGoInstall(t, b, root, l)
		}
	}
	if n < 20 {
		t.Fatalf("found %d shell blocks: the documents must have more", n)
	}
}
