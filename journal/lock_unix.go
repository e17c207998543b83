//go:build unix

package journal

import (
	"os"
	"syscall"
)

// flock takes an exclusive advisory lock on f without waiting; a lock
// held elsewhere fails with EWOULDBLOCK.
func flock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
