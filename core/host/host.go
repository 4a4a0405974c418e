// Package host starts plugin processes and keeps them alive: it finds a
// plugin's binary (the ebb binary itself for builtins, plugin_dir for the
// rest), verifies pinned checksums, launches it over gRPC with mutual TLS,
// configures it, and restarts it with backoff when it dies.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/sdk"
)

// ServeCommand is the hidden subcommand with which the ebb binary serves one
// of its builtin plugins: `ebb plugin-serve NAME`.
const ServeCommand = "plugin-serve"

// Options configure a Host.
type Options struct {
	// PluginDir holds external plugin binaries.
	PluginDir string
	// Self is the ebb binary that serves builtins; empty means no builtins.
	Self string
	// Builtins are the plugin names Self can serve.
	Builtins []string
	Logger   hclog.Logger
	Metrics  *metrics.Metrics
	// StartTimeout bounds a plugin's start; default 20s.
	StartTimeout time.Duration
	// Backoff is the first restart delay, doubled per quick death up to
	// MaxBackoff; defaults 500ms and 30s.
	Backoff, MaxBackoff time.Duration
	// ValidatorIdle is how long a validation process may sit unused
	// before it is stopped; default 1m.
	ValidatorIdle time.Duration
}

// Host owns plugin processes.
type Host struct {
	opts Options

	// answers caches what validation processes said (see validate.go).
	answers  *answers
	launches atomic.Int64
	starts   *prometheus.CounterVec

	mu         sync.Mutex
	pins       map[string]string     // plugin name -> the sha256 its Info was asked with
	sums       map[string]pinned     // by path: the last checksum that matched
	validators map[string]*validator // by binary, kind and pin
	instances  []*Instance
}

// New returns a Host.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 20 * time.Second
	}
	if opts.Backoff == 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.ValidatorIdle == 0 {
		opts.ValidatorIdle = defaultValidatorIdle
	}
	return &Host{opts: opts, answers: newAnswers(maxAnswers), starts: startsCounter(opts.Metrics.Registry),
		pins: map[string]string{}, sums: map[string]pinned{}, validators: map[string]*validator{}}
}

// SetPluginDir points the host at the configuration's plugin_dir; the config
// loader calls it before it asks for any plugin's info. A directory that does
// not exist is an error: a typo would otherwise read as "no such plugin".
func (h *Host) SetPluginDir(dir string) error {
	if err := CheckPluginDir(dir); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opts.PluginDir = dir
	return nil
}

// CheckPluginDir says whether dir can be a plugin directory.
func CheckPluginDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("plugin directory %s does not exist", dir)
		}
		return fmt.Errorf("plugin directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("plugin directory %s is not a directory", dir)
	}
	return nil
}

func (h *Host) pluginDir() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opts.PluginDir
}

// Found is a plugin the host can start.
type Found struct {
	Name    string
	Builtin bool
	Path    string
}

// Find locates a plugin by name: a builtin, or an executable file of that
// name in the plugin directory. A builtin name wins, so a stray binary in
// plugin_dir cannot shadow ebb's own plugins.
func (h *Host) Find(name string) (Found, error) {
	if name == "" {
		return Found{}, errors.New("empty plugin name")
	}
	for _, b := range h.opts.Builtins {
		if b == name && h.opts.Self != "" {
			return Found{Name: name, Builtin: true, Path: h.opts.Self}, nil
		}
	}
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return Found{}, fmt.Errorf("plugin name %q must be a plain file name in plugin_dir", name)
	}
	dir := h.pluginDir()
	if dir == "" {
		return Found{}, fmt.Errorf("%w %q: not builtin (%s) and no plugin_dir is set", config.ErrUnknownPlugin, name, h.builtinList())
	}
	path := filepath.Join(dir, name)
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return Found{}, fmt.Errorf("%w %q: not builtin (%s) and no executable %s", config.ErrUnknownPlugin, name, h.builtinList(), path)
	}
	return Found{Name: name, Path: path}, nil
}

func (h *Host) builtinList() string {
	if len(h.opts.Builtins) == 0 || h.opts.Self == "" {
		return "there are no builtins"
	}
	return "builtins: " + strings.Join(h.opts.Builtins, ", ")
}

// List returns every plugin found: builtins, then executables in plugin_dir.
func (h *Host) List() ([]Found, error) {
	var out []Found
	if h.opts.Self != "" {
		for _, b := range h.opts.Builtins {
			out = append(out, Found{Name: b, Builtin: true, Path: h.opts.Self})
		}
	}
	dir := h.pluginDir()
	if dir == "" {
		return out, nil
	}
	if err := CheckPluginDir(dir); err != nil {
		return out, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out, fmt.Errorf("reading plugin directory: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		if f, err := h.Find(n); err == nil && !f.Builtin {
			out = append(out, f)
		}
	}
	return out, nil
}

func (h *Host) command(f Found) *exec.Cmd {
	cmd := exec.Command(f.Path)
	if f.Builtin {
		cmd = exec.Command(f.Path, ServeCommand, f.Name)
	}
	bindToParent(cmd)
	return cmd
}

// checksum verifies an external plugin against its pin before anything runs
// it. The launcher checks again on the binary it starts; checking here gives
// a clear message.
func checksum(f Found, pin string) ([]byte, error) {
	if pin == "" {
		return nil, nil
	}
	if f.Builtin {
		return nil, fmt.Errorf("plugin %q is builtin: a sha256 pin applies only to binaries in plugin_dir", f.Name)
	}
	want, err := hex.DecodeString(pin)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("sha256 %q is not 64 hex digits", pin)
	}
	got, err := sdk.FileSHA256(f.Path)
	if err != nil {
		return nil, fmt.Errorf("reading plugin %q: %w", f.Name, err)
	}
	if hex.EncodeToString(got) != hex.EncodeToString(want) {
		return nil, fmt.Errorf("%w for plugin %q: %s has sha256 %x, the config pins %s", config.ErrChecksumMismatch, f.Name, f.Path, got, pin)
	}
	return want, nil
}

// Launches is how many plugin processes the host has started, for tests
// and benchmarks that count them.
func (h *Host) Launches() int64 { return h.launches.Load() }

// launch starts a plugin; ctx, when done, abandons the start.
// purpose labels ebb_plugin_starts_total.
func (h *Host) launch(ctx context.Context, f Found, kind sdk.Kind, sum []byte, logger hclog.Logger, purpose string) (*sdk.Process, error) {
	h.launches.Add(1)
	h.starts.WithLabelValues(f.Name, purpose).Inc()
	p, err := sdk.Launch(h.command(f), sdk.LaunchOptions{
		Kind:         kind,
		SHA256:       sum,
		Logger:       logger,
		StartTimeout: h.opts.StartTimeout,
		Context:      ctx,
	})
	if err != nil {
		return nil, &StartError{Plugin: f.Name, Err: err}
	}
	return p, nil
}

// StartError is a plugin that could not be started or configured: its
// binary is missing, untrusted, not a plugin, hangs in its start, or
// rejected its configuration.
type StartError struct {
	Plugin string
	Err    error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Close stops every instance's process and every validation process.
func (h *Host) Close() {
	h.mu.Lock()
	instances := h.instances
	h.instances = nil
	validators := h.validators
	h.validators = map[string]*validator{}
	h.mu.Unlock()
	for _, i := range instances {
		i.Stop()
	}
	for _, v := range validators {
		v.close()
	}
}
