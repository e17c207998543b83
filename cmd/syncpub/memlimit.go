package main

import (
	"os"
	"runtime/debug"

	"go.uber.org/zap"
)

// memoryHeadroom is what the publisher needs beside its retained history
// in the common case: Publish's pending bytes, the subscribers' queues
// while they keep up, buffers and the runtime.
const memoryHeadroom = 40 << 20

// setMemoryLimit gives the Go runtime a soft memory limit of the retained
// history's budget (--history-bytes) plus memoryHeadroom, unless the
// environment sets GOMEMLIMIT or the publisher retains nothing. The
// history is large and long-lived: under the default GOGC the heap grows
// to about twice the live data before a collection, and with many topics
// (one small batch per record) the garbage made meanwhile took the peak
// RSS 20 MiB past --history-bytes + 64 MiB. Under the limit the collector
// runs earlier instead. It is a soft limit: a publisher whose subscribers
// fall behind holds their queues (--max-queue-bytes) beyond it, and the
// collector then works harder, at most half the CPU, rather than fail.
// It returns the limit set, or 0.
func setMemoryLimit(o options, lg *zap.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" || o.pub.RecoveryBind == "" || o.pub.History.MaxMessages == 0 {
		return 0
	}
	limit := o.pub.History.MaxBytes + memoryHeadroom
	debug.SetMemoryLimit(limit)
	lg.Debug("soft memory limit", zap.Int64("bytes", limit))
	return limit
}
