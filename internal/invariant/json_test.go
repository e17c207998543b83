package invariant

import (
	"strings"
	"testing"
)

func TestReadJSON(t *testing.T) {
	out := `{"type":"joined","publisher":"ab","epoch":7,"endpoint":"tcp://x"}
{"type":"message","topic":"t","seq":1,"publisher":"ab","epoch":7,"payload":"p1"}
{"type":"loss","publisher":"ab","epoch":7,"topic":"t","from":2,"to":3,"count":2,"cause":"beyond-retention"}
{"type":"message","topic":"t","seq":4,"publisher":"ab","epoch":7,"payload_b64":"AAE=","replay":true}
{"type":"end","publisher":"ab","epoch":7}
{"type":"summary","outcome":"lost","exit_code":1,"received":2,"recovered":1,"lost":2,"loss_events":1,"publishers_ended":1}
`
	c := New(Options{})
	sum, err := c.ReadJSON("s", 1, strings.NewReader(out))
	if err != nil || sum == nil {
		t.Fatalf("ReadJSON: %v %v", sum, err)
	}
	c.JudgeRun("s", 1, sum, 1)
	if !c.Complete("s", 1, "ab", 7, Finals{"t": 4}, func(string) bool { return true }, func(string) uint64 { return 1 }) {
		t.Errorf("END not seen")
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	c.JudgeRun("s", 1, sum, 0)
	if c.Err() == nil {
		t.Errorf("exit 0 against a summary's exit 1 passed")
	}
}

// TestReadJSONRuns: `--output runs` folds consecutive deliveries into
// run lines; the checker judges them as it judges each record, and
// catches a run that skips a record as it would a record.
func TestReadJSONRuns(t *testing.T) {
	out := `{"type":"joined","publisher":"ab","epoch":7,"endpoint":"tcp://x"}
{"type":"run","publisher":"ab","epoch":7,"topic":"t","from":1,"to":1000,"count":1000}
{"type":"run","publisher":"ab","epoch":7,"topic":"u","from":1,"to":10,"count":10}
{"type":"loss","publisher":"ab","epoch":7,"topic":"t","from":1001,"to":1002,"count":2,"cause":"beyond-retention"}
{"type":"run","publisher":"ab","epoch":7,"topic":"t","from":1003,"to":1004,"count":2,"replay":true}
{"type":"end","publisher":"ab","epoch":7}
{"type":"summary","outcome":"lost","exit_code":1,"received":1012,"recovered":2,"lost":2,"loss_events":1,"publishers_ended":1}
`
	c := New(Options{})
	sum, err := c.ReadJSON("s", 1, strings.NewReader(out))
	if err != nil || sum == nil {
		t.Fatalf("ReadJSON: %v %v", sum, err)
	}
	c.JudgeRun("s", 1, sum, 1)
	if !c.Complete("s", 1, "ab", 7, Finals{"t": 1004, "u": 10}, func(string) bool { return true }, func(string) uint64 { return 1 }) {
		t.Errorf("END not seen")
	}
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}

	skip := strings.Replace(out, `"from":1003`, `"from":1004`, 1)
	c = New(Options{})
	sum, err = c.ReadJSON("s", 1, strings.NewReader(skip))
	if err != nil {
		t.Fatal(err)
	}
	c.JudgeRun("s", 1, sum, 1)
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "record 1004 delivered, expected 1003 next") {
		t.Errorf("a run skipping record 1003: %v", err)
	}
}

// TestReadJSONCutLine: the last line a kill cut short is ignored; a bad
// line before the last is an error.
func TestReadJSONCutLine(t *testing.T) {
	c := New(Options{})
	if sum, err := c.ReadJSON("s", 1, strings.NewReader(`{"type":"message","topic":"t","seq":1,"publisher":"ab","epoch":7}`+"\n"+`{"type":"mess`)); err != nil || sum != nil {
		t.Errorf("cut last line: %v %v", sum, err)
	}
	if _, err := c.ReadJSON("s", 2, strings.NewReader("{bad\n{}\n")); err == nil {
		t.Errorf("a bad line in the middle passed")
	}
}

func FuzzReadJSON(f *testing.F) {
	f.Add(`{"type":"message","topic":"t","seq":1,"publisher":"ab","epoch":7,"payload":"p"}` + "\n" + `{"type":"summary","outcome":"ok"}`)
	f.Add(`{"type":"loss","from":5,"to":0,"cause":"publisher-gone"}`)
	f.Add(`{"type":"run","topic":"t","from":1,"to":18446744073709551615}` + "\n" + `{"type":"run","topic":"t","from":9,"to":3}`)
	f.Add("{\n}")
	f.Fuzz(func(t *testing.T, in string) {
		c := New(Options{})
		sum, err := c.ReadJSON("s", 1, strings.NewReader(in))
		if err == nil && sum != nil {
			c.JudgeRun("s", 1, sum, sum.Outcome.ExitCode)
		}
	})
}
