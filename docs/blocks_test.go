package docs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// block is one fenced shell block of a document and what its doctest
// comment says about it.
type block struct {
	file      string // relative to the repository root
	line      int    // of the opening fence
	lang      string
	text      string
	skip      string // why it is not run; "" runs it
	only      []int  // the lines to run (1-based); nil: all
	repeat    int
	continues bool
	timeout   time.Duration
	expects   []expectation
	given     string // a Go fragment's free variables, as parameters: "ctx context.Context, id envelope.ID"
}

// expectation is one expect directive.
type expectation struct {
	re *regexp.Regexp
	n  int
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// runnable reports whether the block is a shell block.
func (b block) runnable() bool { return b.lang == "sh" || b.lang == "bash" }

// script returns the lines of the block to run.
func (b block) script() string {
	if b.only == nil {
		return b.text
	}
	lines := strings.Split(b.text, "\n")
	var out []string
	for _, n := range b.only {
		if n >= 1 && n <= len(lines) {
			out = append(out, lines[n-1])
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// parseBlocks returns the fenced blocks of the Markdown file at root/rel
// with their doctest directives.
func parseBlocks(root, rel string) ([]block, error) {
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		blocks    []block
		cur       *block
		directive []string // the doctest comment just above, its lines
		inComment bool
		n         int
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil:
			if strings.HasPrefix(line, "```") {
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			cur.text += line + "\n"
		case inComment:
			body, end := strings.CutSuffix(strings.TrimSpace(line), "-->")
			directive = append(directive, strings.TrimSpace(body))
			inComment = !end
		case strings.HasPrefix(line, "<!-- doctest:"):
			body, end := strings.CutSuffix(strings.TrimSpace(strings.TrimPrefix(line, "<!-- doctest:")), "-->")
			directive = []string{strings.TrimSpace(body)}
			inComment = !end
		case strings.HasPrefix(line, "```"):
			b := block{file: rel, line: n, lang: strings.Fields(line[3:] + " x")[0], repeat: 1, timeout: time.Minute}
			if b.lang == "x" {
				b.lang = ""
			}
			if err := b.apply(directive); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", rel, n, err)
			}
			directive = nil
			cur = &b
		default:
			if directive != nil && strings.TrimSpace(line) != "" {
				return nil, fmt.Errorf("%s:%d: a doctest comment must be right above its block", rel, n)
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: block not closed", rel, cur.line)
	}
	return blocks, sc.Err()
}

var expectRE = regexp.MustCompile(`^expect\s+(?:(\d+)x\s+)?(.+)$`)

// apply sets the block's options from the lines of its doctest comment.
func (b *block) apply(lines []string) error {
	for _, l := range lines {
		if l == "" {
			continue
		}
		word, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch word {
		case "skip", "skip:":
			b.skip = strings.Trim(rest, "():")
			if b.skip == "" {
				return fmt.Errorf("skip needs a reason")
			}
		case "lines":
			spec, _, _ := strings.Cut(rest, " ")
			for _, s := range strings.Split(spec, ",") {
				v, err := strconv.Atoi(s)
				if err != nil || v < 1 {
					return fmt.Errorf("lines %q: want line numbers from 1", spec)
				}
				b.only = append(b.only, v)
			}
		case "repeat":
			v, err := strconv.Atoi(rest)
			if err != nil || v < 1 {
				return fmt.Errorf("repeat %q: want a count", rest)
			}
			b.repeat = v
		case "timeout":
			d, err := time.ParseDuration(rest)
			if err != nil || d <= 0 {
				return fmt.Errorf("timeout %q: want a duration", rest)
			}
			b.timeout = d
		case "continues":
			b.continues = true
		case "given":
			b.given = rest
		case "expect":
			m := expectRE.FindStringSubmatch(l)
			if m == nil {
				return fmt.Errorf("expect needs a regular expression")
			}
			re, err := regexp.Compile("(?m)" + m[2])
			if err != nil {
				return fmt.Errorf("expect: %w", err)
			}
			e := expectation{re: re, n: 1}
			if m[1] != "" {
				e.n, _ = strconv.Atoi(m[1])
			}
			b.expects = append(b.expects, e)
		default:
			return fmt.Errorf("unknown doctest directive %q", word)
		}
	}
	return nil
}

// documents lists README.md and the Markdown files of docs/, relative to
// the repository root.
func documents(t testing.TB, root string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, filepath.Join("docs", filepath.Base(d)))
	}
	return out
}

// repoRoot is the repository root: this package's parent directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// allBlocks parses every document.
func allBlocks(t testing.TB) []block {
	t.Helper()
	root := repoRoot(t)
	var out []block
	for _, d := range documents(t, root) {
		bs, err := parseBlocks(root, d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bs...)
	}
	return out
}

// TestParseBlocks: the directives and the fences are read as documented
// in doc.go, and a malformed directive is an error, not a silent skip.
func TestParseBlocks(t *testing.T) {
	dir := t.TempDir()
	doc := "# T\n\n<!-- doctest: repeat 3\n     expect 2x ^ok$\n     timeout 5s -->\n```sh\necho ok\necho ok\n```\n\n" +
		"<!-- doctest: skip (needs two hosts) -->\n```bash\nfalse\n```\n\n```text\nnot run\n```\n\n" +
		"<!-- doctest: lines 2,3 (only these) -->\n```sh\na\nb\nc\n```\n\n<!-- doctest: continues -->\n```sh\nd\n```\n"
	if err := os.WriteFile(filepath.Join(dir, "t.md"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	bs, err := parseBlocks(dir, "t.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 5 {
		t.Fatalf("%d blocks, want 5", len(bs))
	}
	b := bs[0]
	if b.line != 6 || b.repeat != 3 || b.timeout != 5*time.Second || len(b.expects) != 1 || b.expects[0].n != 2 || b.text != "echo ok\necho ok\n" {
		t.Errorf("first block %+v", b)
	}
	if bs[1].skip != "needs two hosts" || !bs[1].runnable() || bs[2].runnable() || bs[2].lang != "text" {
		t.Errorf("skip %q, lang %q", bs[1].skip, bs[2].lang)
	}
	if got := bs[3].script(); got != "b\nc\n" {
		t.Errorf("lines 2,3: %q", got)
	}
	if !bs[4].continues || bs[3].continues {
		t.Error("continues")
	}
	for _, bad := range []string{"<!-- doctest: skip -->\n```sh\nx\n```\n", "<!-- doctest: frobnicate -->\n```sh\nx\n```\n",
		"<!-- doctest: expect 2x ( -->\n```sh\nx\n```\n", "<!-- doctest: repeat 3 -->\n\ntext\n```sh\nx\n```\n"} {
		if err := os.WriteFile(filepath.Join(dir, "bad.md"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := parseBlocks(dir, "bad.md"); err == nil {
			t.Errorf("%q parsed without an error", bad)
		}
	}
}
