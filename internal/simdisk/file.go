package simdisk

import (
	"io"
	"io/fs"
	"math"
	"os"
	"syscall"
)

// File is an open file of a Disk. It implements journal.File. After a
// crash every File opened before it fails with os.ErrClosed, as the
// handles of a dead process are gone.
type File struct {
	d      *Disk
	n      *node
	name   string
	flag   int
	gen    uint64
	off    int64 // write offset without os.O_APPEND
	closed bool
}

// live reports why f cannot be used, if it cannot. Called with d.mu held.
func (f *File) live(op string) error {
	if f.closed || f.gen != f.d.gen {
		return &fs.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	return nil
}

func (f *File) writable(op string) error {
	if err := f.live(op); err != nil {
		return err
	}
	if f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return &fs.PathError{Op: op, Path: f.name, Err: syscall.EBADF}
	}
	if f.d.readOnly {
		return &fs.PathError{Op: op, Path: f.name, Err: syscall.EROFS}
	}
	return nil
}

// Write writes p at the file's offset, or at its end with os.O_APPEND,
// into the page cache. If the disk's capacity leaves room for only part
// of it, that part is written and the error wraps syscall.ENOSPC.
func (f *File) Write(p []byte) (int, error) {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.writable("write"); err != nil {
		return 0, err
	}
	n := f.n
	pos := f.off
	if f.flag&os.O_APPEND != 0 {
		pos = int64(len(n.data))
	}
	want := int64(len(p))
	var err error
	if d.capacity >= 0 {
		// Bytes beyond the current end need room; those within it do not.
		limit := int64(len(n.data)) + max(d.capacity-d.used, 0)
		if pos+want > limit {
			want = max(min(limit-pos, want), 0)
			err = &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
	}
	if end := pos + want; end > int64(len(n.data)) {
		d.used += end - int64(len(n.data))
		n.data = grow(n.data, int(end))
	}
	copy(n.data[pos:], p[:want])
	if want > 0 {
		n.dirtyFrom = min(n.dirtyFrom, pos)
	}
	f.off = pos + want
	return int(want), err
}

// grow extends b to size bytes, zero-filled, amortising the copies.
func grow(b []byte, size int) []byte {
	if size <= cap(b) {
		old := len(b)
		b = b[:size]
		clear(b[old:])
		return b
	}
	nb := make([]byte, size, max(size, 2*cap(b)))
	copy(nb, b)
	return nb
}

// ReadAt reads from the page cache at off, as os.File.ReadAt: fewer
// bytes than len(p) come with io.EOF.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.live("read"); err != nil {
		return 0, err
	}
	if f.n.dir {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: syscall.EISDIR}
	}
	if f.flag&os.O_WRONLY != 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: syscall.EBADF}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: f.name, Err: syscall.EINVAL}
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

// Stat describes the open file.
func (f *File) Stat() (fs.FileInfo, error) {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.live("stat"); err != nil {
		return nil, err
	}
	return f.n.info(f.name), nil
}

// Truncate changes the size of the page-cache copy. Growing it counts
// against the capacity but never fails for it.
func (f *File) Truncate(size int64) error {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.writable("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: syscall.EINVAL}
	}
	n := f.n
	d.used += size - int64(len(n.data))
	if size <= int64(len(n.data)) {
		n.data = n.data[:size]
	} else {
		n.data = grow(n.data, int(size))
	}
	n.dirtyFrom = min(n.dirtyFrom, size)
	return nil
}

// Sync makes the file's data and size durable. It does not make its name
// durable; SyncDir on its directory does.
func (f *File) Sync() error {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.live("sync"); err != nil {
		return err
	}
	n := f.n
	if n.dirtyFrom == math.MaxInt64 && len(n.synced) == len(n.data) {
		return nil
	}
	keep := min(n.dirtyFrom, int64(len(n.synced)), int64(len(n.data)))
	n.synced = append(n.synced[:keep], n.data[keep:]...)
	n.dirtyFrom = math.MaxInt64
	return nil
}

// Close closes the file. Closing it again, or after a crash, returns an
// error wrapping os.ErrClosed.
func (f *File) Close() error {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	return f.closeLocked()
}

func (f *File) closeLocked() error {
	if err := f.live("close"); err != nil {
		f.closed = true
		return err
	}
	f.closed = true
	f.n.open--
	f.d.release(f.n)
	return nil
}
