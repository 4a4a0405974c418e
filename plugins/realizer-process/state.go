package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// record is a unit's pid file: everything needed to recognize its process
// after the plugin restarts, and to start it again.
type record struct {
	Unit   string `json:"unit"`
	Chain  string `json:"chain"`
	Target string `json:"target"`
	Size   int64  `json:"size"`
	Pid    int    `json:"pid"`
	// ProcStart is field 22 of /proc/<pid>/stat at start: a recycled pid
	// has another one.
	ProcStart      uint64     `json:"proc-start-ticks"`
	Argv           []string   `json:"argv"`
	Token          string     `json:"token"`
	Log            string     `json:"log"`
	StartedAt      time.Time  `json:"started-at"`
	DrainStartedAt *time.Time `json:"drain-started-at,omitempty"`
	KilledAt       *time.Time `json:"killed-at,omitempty"`
	// RestartRequest is the request id of the restart that started this
	// process, so a retried decision does not restart it again.
	RestartRequest string `json:"restart-request,omitempty"`
	Restarts       int    `json:"restarts,omitempty"`
	// Starting marks an intent record, written before the process is
	// started and replaced once its pid is known. A plugin that dies in
	// between leaves it behind, and the next one finds the process by its
	// token instead of losing a live unit.
	Starting bool `json:"starting,omitempty"`
}

func (r *record) target() sdk.Target { return sdk.Target{Chain: r.Chain, Name: r.Target} }

// store is the state directory: units/<key>.json pid files, the persisted
// config overrides, and a lock file.
type store struct{ dir string }

const (
	unitsDir      = "units"
	overridesFile = "overrides.json"
	lockFile      = ".lock"
)

// unitKey names a unit's files. Each part is escaped so that the key is
// unambiguous and safe as a file name whatever the ids contain.
func unitKey(t sdk.Target, unit string) string {
	key := escapeName(t.Chain) + "_" + escapeName(t.Name) + "_" + escapeName(unit)
	if len(key) > 200 {
		sum := sha256.Sum256([]byte(t.Chain + "\x00" + t.Name + "\x00" + unit))
		key = "h-" + hex.EncodeToString(sum[:16])
	}
	return key
}

func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s store) unitPath(t sdk.Target, unit string) string {
	return filepath.Join(s.dir, unitsDir, unitKey(t, unit)+".json")
}

// lock serializes plugin instances sharing a state directory (a runner
// restarting the plugin while an old instance still answers a call), so
// two of them never start the same unit.
func (s store) lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state dir lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("state dir lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the state dir lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// list reads the pid files of one target.
func (s store) list(t sdk.Target) ([]*record, error) {
	dir := filepath.Join(s.dir, unitsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pid files: %w", err)
	}
	var out []*record
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading pid file: %w", err)
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || (r.Pid <= 1 && !(r.Starting && r.Pid == 0 && r.Token != "")) || r.Unit == "" {
			return nil, fmt.Errorf("pid file %s is not one this plugin wrote (%v): move it away if its process is gone",
				filepath.Join(dir, name), err)
		}
		if r.target() == t {
			out = append(out, &r)
		}
	}
	return out, nil
}

// save writes a pid file atomically: a crash leaves the old or the new
// version, never half of one.
func (s store) save(r *record) error {
	dir := filepath.Join(s.dir, unitsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pid file dir: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding pid file: %w", err)
	}
	return writeAtomic(s.unitPath(r.target(), r.Unit), b)
}

func (s store) remove(r *record) error {
	if err := os.Remove(s.unitPath(r.target(), r.Unit)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing pid file of %s: %w", r.Unit, err)
	}
	return nil
}

// overrides are the vars changed by config overrides, per target.
type overrides map[string]map[string]string

func (s store) loadOverrides() (overrides, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, overridesFile))
	if errors.Is(err, os.ErrNotExist) {
		return overrides{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config overrides: %w", err)
	}
	o := overrides{}
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("config overrides %s: %w", filepath.Join(s.dir, overridesFile), err)
	}
	return o, nil
}

func (s store) saveOverrides(o overrides) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding config overrides: %w", err)
	}
	return writeAtomic(filepath.Join(s.dir, overridesFile), b)
}

func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}
