package journal

// segmentFile is the part of *os.File the writer uses for the active
// segment. Tests wrap it to inject a full disk or a failing fsync.
type segmentFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// hooks inject faults in tests (export_test.go); production leaves them nil.
type hooks struct {
	// create runs before a segment file is created; its error fails the
	// creation as the file system's would.
	create func(path string) error
	// wrap wraps every active segment file the journal opens.
	wrap func(f segmentFile) segmentFile
}
