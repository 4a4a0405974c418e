package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ebbscale/ebb/sdk"
)

// Loading a configuration asks plugins questions: Info, ValidatePolicy,
// ValidateConfig, TargetIdentity. Starting a process per question (a fresh
// process with fresh certificates for each chain's policy) made a start with
// 10,000 chains take minutes. Instead one validation process per plugin
// binary answers every question of a load and of the reloads that follow
// while it is in use, and answers are cached by binary and question, so
// chains that share a policy cost one call and a reload that changes nothing
// costs none.

// defaultValidatorIdle is how long an unused validation process lives: long
// enough to serve a burst of loads (ebb validate, a SIGHUP reload), short
// enough that a running ebb does not keep one process per plugin forever.
const defaultValidatorIdle = time.Minute

// binary is a plugin binary as it is now: where it is, its pin, and its
// stamp, which changes when the file is replaced.
type binary struct {
	Found
	pin   string
	sum   []byte // the pin as bytes; nil when unpinned
	stamp string
}

// pinned memoises a successful checksum of one path: hashing an 80 MB ebb
// binary for each of 10,000 chains would cost minutes by itself.
type pinned struct {
	stamp, pin string
	sum        []byte
}

// binary finds a plugin and vets it: against its pin when it has one, else
// by who could have written it (see trusted).
func (h *Host) binary(plugin, pin string) (binary, error) {
	f, err := h.Find(plugin)
	if err != nil {
		return binary{}, err
	}
	st, err := os.Stat(f.Path)
	if err != nil {
		return binary{}, fmt.Errorf("plugin %q: %w", plugin, err)
	}
	b := binary{Found: f, pin: pin, stamp: fileStamp(st)}
	b.sum, err = h.vet(f, pin, b.stamp)
	return b, err
}

// vet decides whether a plugin may run: against its pin when it has one,
// else by who could have written it (see trusted). stamp, when not empty,
// lets a checksum already verified for this very file stand.
func (h *Host) vet(f Found, pin, stamp string) ([]byte, error) {
	if pin == "" && !f.Builtin {
		return nil, trusted(f, h.pluginDir())
	}
	if pin == "" {
		return nil, nil
	}
	h.mu.Lock()
	p, ok := h.sums[f.Path]
	h.mu.Unlock()
	if ok && stamp != "" && p.stamp == stamp && p.pin == pin {
		return p.sum, nil
	}
	sum, err := checksum(f, pin)
	if err == nil && stamp != "" {
		h.mu.Lock()
		h.sums[f.Path] = pinned{stamp: stamp, pin: pin, sum: sum}
		h.mu.Unlock()
	}
	return sum, err
}

// validator is the long-lived process that answers a binary's validation
// questions. It is started on first use, replaced when it dies or when the
// binary changes, and stopped after it has been idle for a while.
type validator struct {
	h    *Host
	bin  binary
	kind sdk.Kind

	mu       sync.Mutex
	proc     *sdk.Process
	inFlight int
	lastUse  time.Time
	reaper   *time.Timer
	closed   bool
}

// validator returns the validation process of a binary, replacing one that
// serves an older version of the file.
func (h *Host) validator(b binary, kind sdk.Kind) *validator {
	key := b.Path + "\x00" + b.Name + "\x00" + kind.String() + "\x00" + b.pin
	h.mu.Lock()
	old := h.validators[key]
	if old != nil && old.bin.stamp == b.stamp {
		h.mu.Unlock()
		return old
	}
	v := &validator{h: h, bin: b, kind: kind}
	h.validators[key] = v
	h.mu.Unlock()
	if old != nil {
		old.close()
	}
	return v
}

// call runs f against the live process, starting it if needed. A process
// that died (crashed, was killed) is replaced and f tried once more.
func (v *validator) call(f func(context.Context, sdk.Plugin) error) error {
	for attempt := 0; ; attempt++ {
		p, err := v.acquire()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), v.h.opts.StartTimeout)
		err = f(ctx, p.Plugin)
		cancel()
		died := err != nil && (p.Exited() || status.Code(err) == codes.Unavailable)
		v.release(p, died)
		if !died || attempt > 0 {
			return err
		}
		v.h.opts.Logger.Warn("validation process died; starting another", "plugin", v.bin.Name, "error", err)
	}
}

func (v *validator) acquire() (*sdk.Process, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil, fmt.Errorf("plugin %q: its validation process was stopped (the binary changed, or ebb is stopping)", v.bin.Name)
	}
	if v.proc != nil && v.proc.Exited() {
		v.proc.Kill()
		v.proc = nil
	}
	if v.proc == nil {
		p, err := v.h.launch(context.Background(), v.bin.Found, v.kind, v.bin.sum, v.h.opts.Logger.Named(v.bin.Name), "validate")
		if err != nil {
			return nil, err
		}
		v.proc = p
	}
	v.inFlight++
	return v.proc, nil
}

// release ends a call; dead says the process is gone and must not serve
// another.
func (v *validator) release(p *sdk.Process, dead bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.inFlight--
	v.lastUse = time.Now()
	if dead && v.proc == p {
		p.Kill()
		v.proc = nil
	}
	if v.reaper == nil && !v.closed {
		v.reaper = time.AfterFunc(v.h.opts.ValidatorIdle, v.reap)
	}
}

// reap stops the process once it has been idle for ValidatorIdle.
func (v *validator) reap() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reaper = nil
	if v.closed || v.proc == nil {
		return
	}
	if idle := time.Since(v.lastUse); v.inFlight > 0 || idle < v.h.opts.ValidatorIdle {
		v.reaper = time.AfterFunc(v.h.opts.ValidatorIdle-idle, v.reap)
		return
	}
	v.proc.Kill()
	v.proc = nil
}

// pid is the process id, 0 when none runs.
func (v *validator) pid() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.proc == nil || v.proc.Exited() {
		return 0
	}
	return v.proc.Pid()
}

// close stops the process for good.
func (v *validator) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	if v.reaper != nil {
		v.reaper.Stop()
		v.reaper = nil
	}
	if v.proc != nil {
		v.proc.Kill()
		v.proc = nil
	}
}

// startsCounter is ebb_plugin_starts_total on the host's registry. Hosts
// that share a registry (one per command, several in tests) share it.
func startsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ebb_plugin_starts_total",
		Help: "Plugin processes started, by plugin and purpose (validate: answering a configuration load; run: serving chains).",
	}, []string{"plugin", "purpose"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		// Not ours to break a command over: count into an unregistered one.
	}
	return c
}
