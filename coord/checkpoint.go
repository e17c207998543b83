package coord

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/syncmq/syncmq/envelope"
	"github.com/syncmq/syncmq/journal"
)

// checkpoints remember, for a subscriber with a StateDir, the last
// sequence delivered per (publisher, epoch, topic), so that a restarted
// subscriber resumes after it rather than at its join.
//
// The file is a log of records, each
//
//	[4 CRC-32C of the rest][16 publisher][8 epoch][8 seq][1 n][n topic]
//
// appended as deliveries happen (one write per run-loop pass, no fsync:
// a process crash keeps what the kernel has; close syncs the file and
// its directory, so after a clean close a power loss keeps it). The last
// record of a key wins. Loading stops at the first record that is torn
// or damaged, so a crash in the middle of a write costs at most the
// records of that write: those deliveries are made again (at least once).
// When the log grows to four times its live records it is rewritten
// (to a temporary file, synced, renamed over the old).
//
// The file lives on a journal.FS: the real file system, or a simulated
// disk in a simulation (SubscriberConfig.stateFS).
type checkpoints struct {
	fs    journal.FS
	path  string
	f     journal.File
	last  map[ckptKey]uint64
	buf   []byte
	bytes int64 // size of the log file
}

type ckptKey struct {
	pub   envelope.ID
	epoch uint64
	topic string
}

const ckptHeader = 4 + 16 + 8 + 8 + 1

var ckptCRC = crc32.MakeTable(crc32.Castagnoli)

// openCheckpoints opens (creating if needed) the checkpoint log in dir
// on fsys (nil: the real file system).
func openCheckpoints(dir string, fsys journal.FS) (*checkpoints, error) {
	if fsys == nil {
		fsys = journal.OSFS{}
	}
	if err := mkdirAll(fsys, dir); err != nil {
		return nil, fmt.Errorf("coord: state dir: %w", err)
	}
	c := &checkpoints{fs: fsys, path: filepath.Join(dir, "checkpoints"), last: make(map[ckptKey]uint64)}
	data, err := readAll(fsys, c.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("coord: state dir: %w", err)
	}
	valid := c.load(data)
	// Appending: new records follow the valid prefix once the torn tail
	// is cut.
	f, err := fsys.OpenFile(c.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("coord: state dir: %w", err)
	}
	if err := f.Truncate(int64(valid)); err != nil {
		f.Close()
		return nil, fmt.Errorf("coord: state dir: %w", err)
	}
	c.f, c.bytes = f, int64(valid)
	return c, nil
}

// mkdirAll creates dir and the parents it lacks on fsys, as os.MkdirAll.
func mkdirAll(fsys journal.FS, dir string) error {
	fi, err := fsys.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return &fs.PathError{Op: "mkdir", Path: dir, Err: fs.ErrExist}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(fsys, parent); err != nil {
			return err
		}
	}
	if err := fsys.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// readAll returns the content of the file name on fsys.
func readAll(fsys journal.FS, name string) ([]byte, error) {
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

// load reads records from data and returns the length of its valid prefix.
func (c *checkpoints) load(data []byte) int {
	off := 0
	for len(data)-off >= ckptHeader {
		r := data[off:]
		n := int(r[ckptHeader-1])
		size := ckptHeader + n
		if n == 0 || len(r) < size || binary.BigEndian.Uint32(r) != crc32.Checksum(r[4:size], ckptCRC) {
			break
		}
		var k ckptKey
		copy(k.pub[:], r[4:20])
		k.epoch = binary.BigEndian.Uint64(r[20:])
		k.topic = string(r[ckptHeader:size])
		if seq := binary.BigEndian.Uint64(r[28:]); seq == forgotten {
			delete(c.last, k)
		} else {
			c.last[k] = seq
		}
		off += size
	}
	return off
}

func appendCkpt(dst []byte, k ckptKey, seq uint64) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, k.pub[:]...)
	dst = binary.BigEndian.AppendUint64(dst, k.epoch)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = append(dst, byte(len(k.topic)))
	dst = append(dst, k.topic...)
	binary.BigEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], ckptCRC))
	return dst
}

// note records that seq is the last sequence delivered on k; flush
// writes what was noted.
func (c *checkpoints) note(k ckptKey, seq uint64) {
	if c.last[k] == seq {
		return
	}
	c.last[k] = seq
	c.buf = appendCkpt(c.buf, k, seq)
}

// flush writes the noted records, compacting the log when it has grown
// to four times its live records.
func (c *checkpoints) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	if c.f == nil { // closed: what was noted since cannot be kept
		c.buf = c.buf[:0]
		return fmt.Errorf("coord: checkpoint: %w", os.ErrClosed)
	}
	n, err := c.f.Write(c.buf)
	c.bytes += int64(n)
	c.buf = c.buf[:0]
	if err != nil {
		return fmt.Errorf("coord: checkpoint: %w", err)
	}
	if live := int64(len(c.last)) * (ckptHeader + 32); c.bytes > 4*live && c.bytes > 1<<20 {
		return c.compact()
	}
	return nil
}

// compact rewrites the log with one record per key.
func (c *checkpoints) compact() error {
	var buf []byte
	for _, k := range c.keys(nil) {
		buf = appendCkpt(buf, k, c.last[k])
	}
	tmp := c.path + ".tmp"
	f, err := c.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("coord: checkpoint: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.fs.Rename(tmp, c.path)
	}
	if err == nil {
		err = c.fs.SyncDir(filepath.Dir(c.path))
	}
	if err != nil {
		return fmt.Errorf("coord: checkpoint: %w", err)
	}
	old := c.f
	if c.f, err = c.fs.OpenFile(c.path, os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		c.f = old
		return fmt.Errorf("coord: checkpoint: %w", err)
	}
	old.Close()
	c.bytes = int64(len(buf))
	return nil
}

// forgotten is the sequence of a record that deletes its key.
const forgotten = ^uint64(0)

// forget deletes what is checkpointed of (pub, epoch): an incarnation the
// subscriber is done with.
func (c *checkpoints) forget(pub envelope.ID, epoch uint64) {
	for _, k := range c.keys(func(k ckptKey) bool { return k.pub == pub && k.epoch == epoch }) {
		delete(c.last, k)
		c.buf = appendCkpt(c.buf, k, forgotten)
	}
}

// keys returns the keys match accepts (nil: all), sorted, so that the
// bytes written do not depend on map order: a simulation replays a run
// byte for byte.
func (c *checkpoints) keys(match func(ckptKey) bool) []ckptKey {
	var out []ckptKey
	for k := range c.last {
		if match == nil || match(k) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b ckptKey) int {
		return cmp.Or(bytes.Compare(a.pub[:], b.pub[:]), cmp.Compare(a.epoch, b.epoch), strings.Compare(a.topic, b.topic))
	})
	return out
}

// epochs returns what is checkpointed of publisher pub: topic -> last
// delivered, per epoch.
func (c *checkpoints) epochs(pub envelope.ID) map[uint64]map[string]uint64 {
	var out map[uint64]map[string]uint64
	for k, seq := range c.last {
		if k.pub != pub {
			continue
		}
		if out == nil {
			out = make(map[uint64]map[string]uint64)
		}
		if out[k.epoch] == nil {
			out[k.epoch] = make(map[string]uint64)
		}
		out[k.epoch][k.topic] = seq
	}
	return out
}

// close writes what is left, syncs the file and its directory (which
// makes its creation durable) and closes. Idempotent.
func (c *checkpoints) close() error {
	if c == nil || c.f == nil {
		return nil
	}
	err := c.flush()
	if serr := c.f.Sync(); err == nil {
		err = serr
	}
	if serr := c.fs.SyncDir(filepath.Dir(c.path)); err == nil {
		err = serr
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	c.f = nil
	return err
}
