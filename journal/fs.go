package journal

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// FS is the file system a Journal keeps its directory in: every file
// operation the journal performs goes through it. OSFS is the real one;
// a simulation passes an in-memory one (internal/simdisk) in Config.FS to
// run the journal on a simulated disk that can lose unsynced data, tear
// writes, fill up and flip bits.
//
// Names are paths as the journal builds them with path/filepath from the
// directory given to Open. Errors should be what package os returns for
// the same condition (an *fs.PathError wrapping a syscall.Errno), since
// the journal matches them with errors.Is: fs.ErrNotExist, fs.ErrExist,
// fs.ErrPermission, syscall.ENOSPC.
//
// The journal calls an FS from the goroutine calling its methods and, in
// SyncInterval mode or with a MaxAge, from its background goroutine (none
// with Config.ManualTick); a Read may run concurrently with an Append. An
// FS used by one Journal without ManualTick must be safe for concurrent
// use.
type FS interface {
	// OpenFile opens name as os.OpenFile does. The journal uses the flags
	// os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_CREATE, os.O_EXCL,
	// os.O_TRUNC and os.O_APPEND.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Stat describes name as os.Stat does.
	Stat(name string) (fs.FileInfo, error)
	// ReadDir lists directory name sorted by file name, as os.ReadDir.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Mkdir creates directory name; its parent must exist.
	Mkdir(name string, perm fs.FileMode) error
	// Rename renames oldpath to newpath atomically, replacing newpath.
	Rename(oldpath, newpath string) error
	// Remove removes the file name.
	Remove(name string) error
	// SyncDir makes the creations, renames and removals of entries of
	// directory name durable (an fsync of the directory).
	SyncDir(name string) error
	// Lock takes an exclusive lock on the file name, creating it if
	// needed, without waiting, and returns what releases it. A lock held
	// by anyone else (another Journal in this or another process) fails
	// with an error matching syscall.EWOULDBLOCK, which Open reports as
	// ErrLocked. Releasing the returned Closer, or the end of the process
	// that took the lock, releases it.
	Lock(name string) (io.Closer, error)
}

// File is an open file of an FS: the part of *os.File the journal uses.
// Write writes at the file's offset, or at its end if it was opened with
// os.O_APPEND; a short write returns an error, as os.File's does (a full
// disk: n bytes were written and the error matches syscall.ENOSPC).
type File interface {
	io.Writer
	io.ReaderAt
	// Stat describes the open file; the journal uses its Size.
	Stat() (fs.FileInfo, error)
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Sync makes the file's data and size durable (fsync).
	Sync() error
	Close() error
}

// OSFS is the real file system (package os), with flock(2) for Lock where
// the platform has it. It is what a Journal uses when Config.FS is nil.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile calls os.OpenFile.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return f, nil
}

// Stat calls os.Stat.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// ReadDir calls os.ReadDir.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Mkdir calls os.Mkdir.
func (OSFS) Mkdir(name string, perm fs.FileMode) error { return os.Mkdir(name, perm) }

// Rename calls os.Rename.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove calls os.Remove.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// SyncDir opens the directory and fsyncs it.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Lock opens (creating) name and takes an exclusive flock on it without
// waiting. The lock belongs to the open file description, so a second
// Lock in the same process is refused as well as one in another process.
// Closing the returned file releases it. Where flock is not available
// the lock is not taken: the caller must make sure a directory is opened
// by one Journal at a time.
func (OSFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "flock", Path: name, Err: err}
	}
	return f, nil
}

// readFile reads the whole file name from fsys.
func readFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:n], err
}
