package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
)

// profileEnv names the file a child writes its CPU profile to. Our
// modes read it in runChildMode; syncpub and syncsub read it through
// profileHook, which the bench adds to them at build time only when
// asked to profile (--cpuprofile), without touching their sources.
const profileEnv = "SYNCMQ_PEERS_CPUPROFILE"

// profileHook is added to package main of syncpub and syncsub with go
// build -overlay: cobra runs its finalizers after the command returns
// and before cli.Exit ends the process, so the profile covers the whole
// run and is written completely.
const profileHook = `package main

import (
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

func init() {
	path := os.Getenv("` + profileEnv + `")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return
	}
	cobra.OnFinalize(func() {
		pprof.StopCPUProfile()
		f.Close()
	})
}
`

// profileOverlay writes the hook and an overlay file that adds it to
// cmd/syncpub and cmd/syncsub of repo, and returns the overlay's path.
func profileOverlay(repo, tmp string) (string, error) {
	hook := filepath.Join(tmp, "peers_profile_hook.go")
	if err := os.WriteFile(hook, []byte(profileHook), 0o600); err != nil {
		return "", err
	}
	o := struct{ Replace map[string]string }{Replace: map[string]string{
		filepath.Join(repo, "cmd", "syncpub", "zz_peers_profile.go"): hook,
		filepath.Join(repo, "cmd", "syncsub", "zz_peers_profile.go"): hook,
	}}
	b, err := json.Marshal(o)
	if err != nil {
		return "", err
	}
	path := filepath.Join(tmp, "peers_profile_overlay.json")
	return path, os.WriteFile(path, b, 0o600)
}

// profileChildEnv is the environment that makes a child of this job
// profile itself, or nothing when the bench is not profiling.
func (e *env) profileChildEnv(s shape, sys system, role string) []string {
	if e.profileDir == "" {
		return nil
	}
	role = strings.NewReplacer(" ", "-", "/", "-").Replace(role)
	name := fmt.Sprintf("%s-%s-%s-run%d.pprof", s.Name, sys, role, e.run)
	return []string{profileEnv + "=" + filepath.Join(e.profileDir, name)}
}

// startModeProfile starts the CPU profile a mode was asked for, and
// returns the function that writes it.
func startModeProfile() func() {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
