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
	f.Add("{\n}")
	f.Fuzz(func(t *testing.T, in string) {
		c := New(Options{})
		sum, err := c.ReadJSON("s", 1, strings.NewReader(in))
		if err == nil && sum != nil {
			c.JudgeRun("s", 1, sum, sum.Outcome.ExitCode)
		}
	})
}
