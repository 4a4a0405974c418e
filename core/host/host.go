// Package host starts plugin processes and keeps them alive: it finds a
// plugin's binary (the ebb binary itself for builtins, plugin_dir for the
// rest), verifies pinned checksums, launches it over gRPC with mutual TLS,
// configures it, and restarts it with backoff when it dies.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// Info returns a plugin's info, asking its validation process the first
// time for each version of the binary. It checks that the plugin is of the
// kind the configuration uses it as.
func (h *Host) Info(kind sdk.Kind, plugin, pin string) (sdk.Info, error) {
	b, err := h.binary(plugin, pin)
	if err != nil {
		return sdk.Info{}, err
	}
	info, err := cached(h.answers, question("info", b.Path, b.Name, b.stamp), func() (info sdk.Info, err error) {
		err = h.validator(b, kind).call(func(ctx context.Context, p sdk.Plugin) (err error) {
			if info, err = p.Info(ctx); err != nil {
				return fmt.Errorf("plugin %q: Info: %w", plugin, err)
			}
			return nil
		})
		if err != nil {
			return info, err
		}
		if info.ProtocolVersion != sdk.ProtocolVersion {
			return info, fmt.Errorf("plugin %q speaks protocol %d, this ebb speaks %d", plugin, info.ProtocolVersion, sdk.ProtocolVersion)
		}
		return info, nil
	})
	if err != nil {
		return sdk.Info{}, err
	}
	h.mu.Lock()
	h.pins[plugin] = pin
	h.mu.Unlock()
	if kind != sdk.KindUnknown && info.Kind != kind {
		return info, fmt.Errorf("plugin %q is a %v, not a %v", plugin, info.Kind, kind)
	}
	return info, nil
}

// ValidatePolicy asks an evaluator plugin to check a policy, through its
// validation process; the answer is kept for the same binary and policy.
func (h *Host) ValidatePolicy(plugin string, policy json.RawMessage) ([]sdk.PolicyProblem, error) {
	b, err := h.binary(plugin, h.pin(plugin))
	if err != nil {
		return nil, err
	}
	return cached(h.answers, question("policy", b.Path, b.Name, b.stamp, string(policy)), func() (problems []sdk.PolicyProblem, err error) {
		err = h.validator(b, sdk.KindEvaluator).call(func(ctx context.Context, p sdk.Plugin) (err error) {
			ev, ok := p.(sdk.Evaluator)
			if !ok {
				return fmt.Errorf("plugin %q is not an evaluator", plugin)
			}
			problems, err = ev.ValidatePolicy(ctx, policy)
			return err
		})
		return problems, err
	})
}

var _ config.ConfigValidator = (*Host)(nil)

// ValidateConfig asks a plugin of any kind to check a decoded config block
// without applying it, through its validation process; the answer is kept
// for the same binary and config. A plugin that does not validate configs
// finds no problems.
func (h *Host) ValidateConfig(kind sdk.Kind, plugin, pin string, config json.RawMessage) ([]sdk.Problem, error) {
	b, err := h.binary(plugin, h.pinOr(plugin, pin))
	if err != nil {
		return nil, err
	}
	return cached(h.answers, question("config", b.Path, b.Name, b.stamp, kind.String(), string(config)), func() (problems []sdk.Problem, err error) {
		err = h.validator(b, kind).call(func(ctx context.Context, p sdk.Plugin) (err error) {
			if v, ok := p.(sdk.ConfigValidator); ok {
				problems, err = v.ValidateConfig(ctx, config)
			}
			return err
		})
		return problems, err
	})
}

// identityWorkers bounds the TargetIdentity calls in flight to one
// validation process: enough to overlap the round trips of 10,000 targets.
const identityWorkers = 4

// TargetIdentities asks a realizer plugin which platform object each target
// means under config (see sdk.TargetIdentifier), through its validation
// process; answers are kept by binary, config and target, so a reload asks
// only about new targets. sdk.ErrNoTargetIdentity: the plugin cannot tell.
func (h *Host) TargetIdentities(plugin, pin string, config json.RawMessage, targets []string) ([]string, error) {
	b, err := h.binary(plugin, h.pinOr(plugin, pin))
	if err != nil {
		return nil, err
	}
	cfgSum := question(string(config))
	cfgKey := string(cfgSum[:])
	none := question("no identity", b.Path, b.Name, b.stamp)
	if _, ok := h.answers.get(none); ok {
		return nil, sdk.ErrNoTargetIdentity
	}
	out := make([]string, len(targets))
	var missing []int
	for i, t := range targets {
		if v, ok := h.answers.get(question("identity", b.Path, b.Name, b.stamp, cfgKey, t)); ok {
			out[i] = v.(string)
		} else {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	v := h.validator(b, sdk.KindRealizer)
	ask := func(i int) error {
		return v.call(func(ctx context.Context, p sdk.Plugin) (err error) {
			ti, ok := p.(sdk.TargetIdentifier)
			if !ok {
				return sdk.ErrNoTargetIdentity
			}
			out[i], err = ti.TargetIdentity(ctx, config, targets[i])
			return err
		})
	}
	// The first answer says whether the plugin names targets at all.
	if err := ask(missing[0]); errors.Is(err, sdk.ErrNoTargetIdentity) {
		h.answers.put(none, true)
		return nil, err
	} else if err != nil {
		return nil, err
	}
	if err := parallel(missing[1:], identityWorkers, ask); err != nil {
		return nil, err
	}
	for _, i := range missing {
		h.answers.put(question("identity", b.Path, b.Name, b.stamp, cfgKey, targets[i]), out[i])
	}
	return out, nil
}

// parallel runs f on every item with at most n at once and returns the
// first error.
func parallel(items []int, n int, f func(int) error) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	for range min(n, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, i := range items {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// pin is the pin the configuration gave a plugin when its Info was asked.
func (h *Host) pin(plugin string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pins[plugin]
}

// pinOr is pin, or when empty the pin the configuration gave the plugin.
func (h *Host) pinOr(plugin, pin string) string {
	if pin != "" {
		return pin
	}
	return h.pin(plugin)
}

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
