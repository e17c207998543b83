package wire

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// An ipc:// endpoint is a Unix domain socket file. Who may connect is
// decided by the file's permission bits (connecting needs write
// permission on it, and search permission on the directories above), so
// the file must never be reachable with looser bits than asked for: it
// is bound under a temporary name in the same directory, given its mode,
// and only then linked to its path. The link fails if the path exists,
// so a socket another process bound meanwhile is never replaced.
//
// A file already at the path is a stale socket if nothing listens on it
// (a process that crashed leaves its file behind): it is removed. A
// socket with a live listener, or a file that is not a socket, is left
// alone and the bind fails.

// ipcListener is a Unix socket listener whose Close removes its file.
type ipcListener struct {
	*net.UnixListener
	path string
	file os.FileInfo // the socket file as bound, to remove only that one

	closeOnce sync.Once
	closeErr  error
}

// ipcProbeTimeout bounds the dial that tells a live listener from a stale
// socket file.
const ipcProbeTimeout = time.Second

func listenIPC(path string, mode os.FileMode) (net.Listener, error) {
	if err := clearStaleSocket(path); err != nil {
		return nil, err
	}
	tmp := filepath.Join(filepath.Dir(path), tempSocketName())
	direct := len(tmp) > MaxIPCPath // no room for a temporary name: bind the path itself
	bindAt := tmp
	if direct {
		bindAt = path
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: bindAt, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The file is removed by Close below, by its final name.
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ul.Close()
		os.Remove(bindAt)
		return nil, err
	}
	if err := os.Chmod(bindAt, mode); err != nil {
		return fail(err)
	}
	if !direct {
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, os.ErrExist) {
				err = fmt.Errorf("%s appeared while binding: another process binds it", path)
			}
			return fail(err)
		}
		os.Remove(tmp)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &ipcListener{UnixListener: ul, path: path, file: fi}, nil
}

func tempSocketName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return ".s" + hex.EncodeToString(b[:])
}

// clearStaleSocket removes a socket file at path that nothing listens on,
// and refuses one with a live listener or a file that is not a socket.
func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	nc, err := net.DialTimeout("unix", path, ipcProbeTimeout)
	if err == nil {
		nc.Close()
		return fmt.Errorf("%s is in use: another process listens on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s exists and cannot be probed: %w", path, err)
	}
	// Stale: its listener is gone.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return nil
}

// Addr returns the socket file's path (not the temporary name it was
// bound under).
func (l *ipcListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Close stops listening and removes the socket file, if it is still the
// one this listener bound.
func (l *ipcListener) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.UnixListener.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
			os.Remove(l.path)
		}
	})
	return l.closeErr
}

// Accept returns the next connection.
func (l *ipcListener) Accept() (net.Conn, error) { return l.UnixListener.Accept() }
