package simdisk

import (
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/syncmq/syncmq/journal"
)

// Unlimited is the capacity of a Disk that never fills.
const Unlimited = -1

// Disk is a simulated file system; see the package documentation for
// what it models. The zero value is not usable; call New.
type Disk struct {
	mu sync.Mutex
	// names is the namespace every handle sees; durable is what a power
	// loss keeps; pending are the metadata operations that lead from one
	// to the other, in order.
	names   map[string]*node
	durable map[string]*node
	pending []nsOp

	capacity int64 // bytes; Unlimited
	used     int64 // page-cache bytes of live files
	readOnly bool
	locks    map[*node]*lockHandle
	// gen is bumped by every crash: handles of an older generation are
	// dead.
	gen uint64
}

// node is a file or directory (an inode).
type node struct {
	dir  bool
	perm fs.FileMode
	data []byte // the page cache: what reads see
	// synced is the durable copy of data. dirtyFrom is the lowest offset
	// written or truncated to since the last Sync (math.MaxInt64 if
	// none): data[:min(dirtyFrom, len(synced))] equals synced's prefix.
	synced    []byte
	dirtyFrom int64
	links     int // names in the namespace (0 or 1)
	open      int // open handles of the current generation
}

// appendOnly reports whether, since the last Sync, n's page cache only
// appended to its durable copy.
func (n *node) appendOnly() bool { return n.dirtyFrom >= int64(len(n.synced)) }

type opKind uint8

const (
	opCreate opKind = iota
	opRename
	opRemove
)

// nsOp is a metadata operation not yet durable.
type nsOp struct {
	kind     opKind
	path, to string
	n        *node // opCreate
}

// touches reports whether op changed an entry of directory dir.
func (op *nsOp) touches(dir string) bool {
	return filepath.Dir(op.path) == dir || (op.kind == opRename && filepath.Dir(op.to) == dir)
}

// apply performs op on the namespace m.
func (op *nsOp) apply(m map[string]*node) {
	switch op.kind {
	case opCreate:
		m[op.path] = op.n
	case opRename:
		if n := m[op.path]; n != nil {
			m[op.to] = n
			delete(m, op.path)
		}
	case opRemove:
		delete(m, op.path)
	}
}

// New returns an empty Disk with unlimited capacity and the directories
// "/" and "." (for relative paths), both durable.
func New() *Disk {
	d := &Disk{names: make(map[string]*node), durable: make(map[string]*node), capacity: Unlimited,
		locks: make(map[*node]*lockHandle)}
	for _, root := range []string{"/", "."} {
		n := &node{dir: true, perm: 0o755, links: 1, dirtyFrom: math.MaxInt64}
		d.names[root], d.durable[root] = n, n
	}
	return d
}

var _ journal.FS = (*Disk)(nil)

// SetCapacity sets the bytes all files may hold together; Unlimited (or
// any negative value) removes the bound. It may be set at any time, also
// below what is used: then every write that needs room fails until
// enough is freed.
func (d *Disk) SetCapacity(bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = bytes
}

// Capacity returns the capacity in bytes, or Unlimited.
func (d *Disk) Capacity() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.capacity < 0 {
		return Unlimited
	}
	return d.capacity
}

// Used returns the bytes the files hold (their page-cache copies).
func (d *Disk) Used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used
}

// SetReadOnly makes every later change fail with syscall.EROFS (true), or
// allows changes again (false).
func (d *Disk) SetReadOnly(ro bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.readOnly = ro
}

// Paths returns the paths of every file and directory, sorted.
func (d *Disk) Paths() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return sortedKeys(d.names)
}

func sortedKeys(m map[string]*node) []string {
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func clean(name string) string { return filepath.Clean(name) }

// parent returns the directory node holding name, or an error.
func (d *Disk) parent(op, name string) (*node, error) {
	p, ok := d.names[filepath.Dir(name)]
	switch {
	case !ok:
		return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOENT}
	case !p.dir:
		return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
	}
	return p, nil
}

// link adds n under name (a new name) and queues the creation.
func (d *Disk) link(name string, n *node) {
	d.names[name] = n
	n.links++
	d.pending = append(d.pending, nsOp{kind: opCreate, path: name, n: n})
}

// unlink drops one name of n, freeing it once unused.
func (d *Disk) unlink(n *node) {
	n.links--
	d.release(n)
}

// release frees n's bytes if nothing refers to it any more.
func (d *Disk) release(n *node) {
	if n.links <= 0 && n.open <= 0 {
		d.used -= int64(len(n.data))
		n.data = nil
	}
}

// OpenFile opens name with the os.O_* flags in flag. Creating a file
// queues its creation as a metadata operation; os.O_TRUNC truncates the
// page-cache copy.
func (d *Disk) OpenFile(name string, flag int, perm fs.FileMode) (journal.File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.openLocked(clean(name), flag, perm)
}

func (d *Disk) openLocked(name string, flag int, perm fs.FileMode) (*File, error) {
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	n, ok := d.names[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EEXIST}
	case ok && n.dir && write:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	case !ok && flag&os.O_CREATE == 0:
		if _, err := d.parent("open", name); err != nil {
			return nil, err
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	case d.readOnly && (write || !ok):
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EROFS}
	case !ok:
		if _, err := d.parent("open", name); err != nil {
			return nil, err
		}
		n = &node{perm: perm.Perm(), dirtyFrom: math.MaxInt64}
		d.link(name, n)
	}
	if flag&os.O_TRUNC != 0 && write && len(n.data) > 0 {
		d.used -= int64(len(n.data))
		n.data = n.data[:0]
		n.dirtyFrom = 0
	}
	n.open++
	return &File{d: d, n: n, name: name, flag: flag, gen: d.gen}, nil
}

// Stat describes name.
func (d *Disk) Stat(name string) (fs.FileInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	n, ok := d.names[name]
	if !ok {
		if _, err := d.parent("stat", name); err != nil {
			return nil, err
		}
		return nil, &fs.PathError{Op: "stat", Path: name, Err: syscall.ENOENT}
	}
	return n.info(name), nil
}

// ReadDir lists directory name, sorted by file name.
func (d *Disk) ReadDir(name string) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	n, ok := d.names[name]
	switch {
	case !ok:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	case !n.dir:
		return nil, &fs.PathError{Op: "readdirent", Path: name, Err: syscall.ENOTDIR}
	}
	var out []fs.DirEntry
	for _, p := range d.children(name) {
		out = append(out, fs.FileInfoToDirEntry(d.names[p].info(p)))
	}
	return out, nil
}

// children returns the paths directly inside directory dir, sorted.
func (d *Disk) children(dir string) []string {
	var out []string
	for p := range d.names {
		if p != dir && filepath.Dir(p) == dir {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Mkdir creates directory name; its parent must exist.
func (d *Disk) Mkdir(name string, perm fs.FileMode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	if _, ok := d.names[name]; ok {
		return &fs.PathError{Op: "mkdir", Path: name, Err: syscall.EEXIST}
	}
	if _, err := d.parent("mkdir", name); err != nil {
		return err
	}
	if d.readOnly {
		return &fs.PathError{Op: "mkdir", Path: name, Err: syscall.EROFS}
	}
	d.link(name, &node{dir: true, perm: perm.Perm(), dirtyFrom: math.MaxInt64})
	return nil
}

// MkdirAll creates directory name and any parents it lacks, as
// os.MkdirAll does.
func (d *Disk) MkdirAll(name string, perm fs.FileMode) error {
	name = clean(name)
	if fi, err := d.Stat(name); err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: name, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if parent := filepath.Dir(name); parent != name {
		if err := d.MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	return d.Mkdir(name, perm)
}

// Rename renames the file oldpath to newpath, replacing a file there.
// Directories cannot be renamed (syscall.ENOTSUP).
func (d *Disk) Rename(oldpath, newpath string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	oldpath, newpath = clean(oldpath), clean(newpath)
	fail := func(errno syscall.Errno) error {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: errno}
	}
	n, ok := d.names[oldpath]
	if !ok {
		return fail(syscall.ENOENT)
	}
	if _, err := d.parent("rename", newpath); err != nil {
		return fail(syscall.ENOENT)
	}
	target, exists := d.names[newpath]
	switch {
	case d.readOnly:
		return fail(syscall.EROFS)
	case n.dir:
		return fail(syscall.ENOTSUP)
	case exists && target.dir:
		return fail(syscall.EISDIR)
	case oldpath == newpath:
		return nil
	}
	if exists {
		d.unlink(target)
	}
	delete(d.names, oldpath)
	d.names[newpath] = n
	d.pending = append(d.pending, nsOp{kind: opRename, path: oldpath, to: newpath})
	return nil
}

// Remove removes a file or an empty directory.
func (d *Disk) Remove(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	n, ok := d.names[name]
	switch {
	case !ok:
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOENT}
	case d.readOnly:
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.EROFS}
	case n.dir && len(d.children(name)) > 0:
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	case name == "/" || name == ".":
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.EBUSY}
	}
	delete(d.names, name)
	d.unlink(n)
	d.pending = append(d.pending, nsOp{kind: opRemove, path: name})
	return nil
}

// SyncDir makes durable every queued metadata operation up to the last
// one that changed an entry of directory name.
func (d *Disk) SyncDir(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	n, ok := d.names[name]
	switch {
	case !ok:
		return &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	case !n.dir:
		return &fs.PathError{Op: "sync", Path: name, Err: syscall.ENOTDIR}
	}
	last := -1
	for i := range d.pending {
		if d.pending[i].touches(name) {
			last = i
		}
	}
	d.commit(last + 1)
	return nil
}

// commit makes the first k queued metadata operations durable.
func (d *Disk) commit(k int) {
	for i := range d.pending[:k] {
		d.pending[i].apply(d.durable)
	}
	rest := copy(d.pending, d.pending[k:])
	clear(d.pending[rest:])
	d.pending = d.pending[:rest]
}

// Pending returns how many metadata operations are not durable yet.
func (d *Disk) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Lock takes an exclusive lock on the file name, creating it if needed.
// A lock already held fails with an *fs.PathError wrapping
// syscall.EWOULDBLOCK. Closing the returned Closer, or a crash, releases
// it.
func (d *Disk) Lock(name string) (io.Closer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	f, err := d.openLocked(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if _, held := d.locks[f.n]; held {
		f.closeLocked()
		return nil, &fs.PathError{Op: "flock", Path: name, Err: syscall.EWOULDBLOCK}
	}
	l := &lockHandle{f: f}
	d.locks[f.n] = l
	return l, nil
}

// lockHandle is a held Lock.
type lockHandle struct{ f *File }

// Close releases the lock and closes its file. It returns os.ErrClosed
// if the lock is gone already (closed, or released by a crash).
func (l *lockHandle) Close() error {
	d := l.f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.locks[l.f.n] == l {
		delete(d.locks, l.f.n)
	}
	return l.f.closeLocked()
}

// ReadFile returns the content of file name as a process reads it (the
// page cache).
func (d *Disk) ReadFile(name string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	n, ok := d.names[name]
	switch {
	case !ok:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	case n.dir:
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	}
	return slices.Clone(n.data), nil
}

// WriteFile replaces the content of file name with data, creating it,
// and makes both the content and the name durable, as a careful writer
// (write, fsync, fsync the directory) would. It is for setting up a
// scenario (a damaged file, say); it ignores the capacity.
func (d *Disk) WriteFile(name string, data []byte, perm fs.FileMode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	f, err := d.openLocked(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	n := f.n
	d.used += int64(len(data)) - int64(len(n.data))
	n.data = append(n.data[:0], data...)
	n.synced = append(n.synced[:0], data...)
	n.dirtyFrom = math.MaxInt64
	f.closeLocked()
	last := -1
	for i := range d.pending {
		if d.pending[i].touches(filepath.Dir(name)) {
			last = i
		}
	}
	d.commit(last + 1)
	return nil
}

// DurableFile returns the durable content of file name: what a power
// loss without torn writes would leave of it, if its name is durable.
func (d *Disk) DurableFile(name string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name = clean(name)
	n, ok := d.durable[name]
	if !ok || n.dir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	}
	return slices.Clone(n.synced), nil
}

// info describes n, found under path.
func (n *node) info(path string) fs.FileInfo {
	mode := n.perm
	if n.dir {
		mode |= fs.ModeDir
	}
	base := filepath.Base(path)
	return &fileInfo{name: base, size: int64(len(n.data)), mode: mode}
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return time.Time{} }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }
