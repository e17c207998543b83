package main

import (
	"os"
	"runtime/debug"

	"github.com/syncmq/syncmq/recovery"
	"go.uber.org/zap"
)

// memoryHeadroom is what the publisher needs beside its retained history
// in the common case: Publish's pending bytes, the subscribers' queues
// while they keep up, buffers and the runtime.
const memoryHeadroom = 40 << 20

// setMemoryLimit gives the Go runtime a soft memory limit of
// memoryHeadroom, plus the retained history's budget (--history-bytes)
// where the history lives in the Go heap (recovery.HistoryOffHeap false),
// unless the environment sets GOMEMLIMIT or the publisher retains
// nothing. Under the default GOGC the heap grows to about twice its live
// data before a collection; with many topics (one small batch per
// record) that took the peak RSS past --history-bytes + 64 MiB. Under the
// limit the collector runs earlier instead. It is a soft limit: a
// publisher whose subscribers fall behind under --slow-policy cut holds
// their queues (--max-queue-bytes) beyond it, and the collector then
// works harder, at most half the CPU, rather than fail. It returns the
// limit set, or 0.
func setMemoryLimit(o options, lg *zap.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" || o.pub.RecoveryBind == "" || o.pub.History.MaxMessages == 0 {
		return 0
	}
	limit := int64(memoryHeadroom)
	if !recovery.HistoryOffHeap {
		limit += o.pub.History.MaxBytes
	}
	debug.SetMemoryLimit(limit)
	lg.Debug("soft memory limit", zap.Int64("bytes", limit))
	return limit
}
