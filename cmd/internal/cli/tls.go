package cli

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/syncmq/syncmq/coord"
	"go.uber.org/zap"
)

// TLS holds the certificate settings both commands share, for every
// tls:// endpoint. Embed it with `mapstructure:",squash"`.
type TLS struct {
	Cert string `mapstructure:"tls-cert" help:"this node's certificate for tls:// endpoints (PEM, leaf first); with --tls-key and --tls-ca; reread on SIGHUP"`
	Key  string `mapstructure:"tls-key" help:"the private key of --tls-cert (PEM)"`
	CA   string `mapstructure:"tls-ca" help:"CA certificates (PEM) that verify the peers' certificates"`
}

// Enabled reports whether any TLS file was given.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" || t.CA != "" }

// Load reads the files, or returns nil when none was given. It returns
// every problem it finds.
func (t TLS) Load() (*coord.TLS, []error) {
	if !t.Enabled() {
		return nil, nil
	}
	var problems []error
	for _, f := range []struct{ key, value string }{{"tls-cert", t.Cert}, {"tls-key", t.Key}, {"tls-ca", t.CA}} {
		if f.value == "" {
			problems = append(problems, fmt.Errorf("%s: needed with the other TLS files (--tls-cert, --tls-key, --tls-ca)", f.key))
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	c, err := coord.LoadTLS(t.Cert, t.Key, t.CA)
	if err != nil {
		return nil, []error{fmt.Errorf("tls: %v", err)}
	}
	return c, nil
}

// ReadAllowFile reads an allow-list file: one identity per line; blank
// lines and lines starting with # are skipped, and surrounding spaces
// are trimmed.
func ReadAllowFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("allow-file: %v", err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ids = append(ids, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("allow-file: %s: %v", path, err)
	}
	return ids, nil
}

// ReloadOnHangup rereads t's files on every SIGHUP until stop is called,
// and logs the outcome: the certificate now in force, or why the reload
// failed and the old one stays. Established connections are not touched.
// A nil t watches nothing (SIGHUP keeps its default action). stop is
// idempotent and waits for the watcher.
func ReloadOnHangup(t *coord.TLS, lg *zap.Logger) (stop func()) {
	if t == nil {
		return func() {}
	}
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	exited := make(chan struct{})
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer close(exited)
		for {
			select {
			case <-ch:
			case <-done:
				return
			}
			if err := t.Reload(); err != nil {
				lg.Warn("TLS reload failed; the certificate in force stays", zap.Error(err))
				continue
			}
			leaf := t.Leaf()
			lg.Info("TLS certificate reloaded", zap.String("identity", t.Identity()), zap.Time("not_after", leaf.NotAfter.UTC().Truncate(time.Second)))
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
		<-exited
	}
}
