package coord

import (
	"testing"

	"go.uber.org/goleak"
)

// The raw go-zeromq baseline benchmark uses zmq4's PUB, whose writer
// goroutine never stops (a defect internal/wire replaces).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*pubMWriter).run"))
}
