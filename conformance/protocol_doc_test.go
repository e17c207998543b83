package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncmq/syncmq/coord"
	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/internal/proctest"
	"github.com/syncmq/syncmq/proto/handshake"
)

// The tests below hold docs/protocol.md to the code where its text, not
// the wire, carried the mistake: a client written from the document alone
// is only as right as the document.

func protocolDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir(), "..", "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sections maps "6" and "1.5" to their headings' titles.
func sections(doc string) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,3} (\d+(?:\.\d+)?)\.? (.+)$`).FindAllStringSubmatch(doc, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestProtocolDocSectionReferences (erratum 5): every "section N" the
// document names exists, and each one given for tls:// is the section
// about tls:// (the introduction once pointed to 5, versions).
func TestProtocolDocSectionReferences(t *testing.T) {
	doc := protocolDoc(t)
	secs := sections(doc)
	if len(secs) < 20 {
		t.Fatalf("found %d headings: the heading pattern no longer matches", len(secs))
	}
	for _, m := range regexp.MustCompile(`[Ss]ections?\s+(\d+(?:\.\d+)?)`).FindAllStringSubmatch(doc, -1) {
		if _, ok := secs[m[1]]; !ok {
			t.Errorf("%q refers to section %s, which does not exist", m[0], m[1])
		}
	}
	// "`tls://`, section 6" and "section 6 the `tls://` transport".
	for _, re := range []string{"tls://`?\\)?,\\s*[Ss]ection\\s+(\\d+)", "[Ss]ection\\s+(\\d+)\\s+the\\s+`tls://"} {
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(doc, -1) {
			if title := secs[m[1]]; !strings.Contains(title, "tls://") {
				t.Errorf("%q: section %s is %q, not the one about tls://", m[0], m[1], title)
			}
		}
	}
	intro := doc[:strings.Index(doc, "## 1.")]
	if !strings.Contains(intro, "(`tls://`, section\n6)") && !strings.Contains(intro, "(`tls://`, section 6)") {
		t.Error("the introduction does not send tls:// readers to section 6")
	}
}

// TestProtocolDocFieldRanges (erratum 6): the table of field ranges in
// section 5.2 says what the codecs enforce, MULTI's count included.
func TestProtocolDocFieldRanges(t *testing.T) {
	doc := protocolDoc(t)
	rows := map[string]string{}
	start := strings.Index(doc, "### 5.2")
	for _, line := range strings.Split(doc[start:strings.Index(doc[start:], "### 5.3")+start], "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 4 {
			rows[strings.TrimSpace(cells[1])] = strings.TrimSpace(cells[4])
		}
	}
	group := func(n int) string {
		s := strconv.Itoa(n)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	}
	want := map[string]string{
		"count":         fmt.Sprintf("DATA, MULTI: 1–%s; else 0", group(envelope.MaxRecords)),
		"payload":       fmt.Sprintf("≤ %d MiB", envelope.DefaultLimits.MaxPayload>>20),
		"subscriber id": fmt.Sprintf("1–%d bytes", handshake.MaxSubscriberID),
		"topic":         fmt.Sprintf("1–%d bytes", envelope.DefaultLimits.MaxTopic),
		"MULTI prefix":  fmt.Sprintf("0–%d bytes", envelope.DefaultLimits.MaxTopic),
		"handshake request / reply": fmt.Sprintf("≤ %d KiB / ≤ %d MiB", handshake.MaxHandshakeSize>>10,
			handshake.MaxReplySize>>20),
	}
	for field, w := range want {
		got, ok := rows[field]
		if !ok {
			t.Errorf("section 5.2 has no row %q", field)
			continue
		}
		if !strings.Contains(got+" "+rowType(doc, field), w) {
			t.Errorf("section 5.2, %s: %q, want it to say %q", field, got, w)
		}
	}
}

// rowType returns the type cell of a 5.2 row, where some rows keep their
// range.
func rowType(doc, field string) string {
	m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(field) + ` \|[^|]*\|([^|]*)\|`).FindStringSubmatch(doc)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestProtocolDocRepairWindow (erratum 7): the repair window the document
// gives as our default, in the ACK example and in words, is the one the
// library and syncpub use.
func TestProtocolDocRepairWindow(t *testing.T) {
	doc := protocolDoc(t)
	ms := coord.DefaultRepairWindow.Milliseconds()
	if !strings.Contains(doc, fmt.Sprintf(`"repair_window_ms":%d}`, ms)) {
		t.Errorf("the ACK example does not show repair_window_ms %d", ms)
	}
	if !strings.Contains(doc, fmt.Sprintf("default is %d,%03d", ms/1000, ms%1000)) {
		t.Errorf("the ACK table does not give the default as %d ms", ms)
	}
	syncpub, _ := proctest.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := start(t, ctx, syncpub, "--check-config")
	wait(t, ctx, "syncpub --check-config", p, 0)
	if m := regexp.MustCompile(`(?m)^repair-window\s+(\S+)\s+default$`).FindStringSubmatch(p.Stdout.String()); m == nil || m[1] != coord.DefaultRepairWindow.String() {
		t.Errorf("syncpub's default repair window: %v, want %v", m, coord.DefaultRepairWindow)
	}
}
