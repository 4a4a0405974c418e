package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ebbscale/ebb/sdk"
)

// Spec says which plugin a config block runs and how it is configured.
type Spec struct {
	// Block is the config block's name, used in logs and metrics.
	Block  string
	Kind   sdk.Kind
	Plugin string
	SHA256 string
	Config json.RawMessage
}

// Instance is one supervised plugin process serving one config block. It is
// started on first use; when its process dies, the next use restarts and
// re-configures it, no sooner than the backoff allows.
type Instance struct {
	h      *Host
	spec   Spec
	logger hclog.Logger

	mu        sync.Mutex
	proc      *sdk.Process
	started   time.Time
	backoff   time.Duration
	notBefore time.Time
	restarts  int
	lastErr   error
	stopped   bool

	// startErr is why the last start failed, nil once one succeeded. It has
	// its own lock: mu is held through a start, and status pages must not
	// wait for one.
	statusMu sync.Mutex
	startErr error
}

// stableAfter is how long a process must live for its death not to count
// as a crash loop.
const stableAfter = time.Minute

// Instance creates a supervised instance. Nothing starts until it is used.
func (h *Host) Instance(spec Spec) *Instance {
	i := &Instance{h: h, spec: spec, logger: h.opts.Logger.Named(spec.Block), backoff: h.opts.Backoff}
	h.mu.Lock()
	h.instances = append(h.instances, i)
	h.mu.Unlock()
	return i
}

// Spec returns what the instance runs.
func (i *Instance) Spec() Spec { return i.spec }

// ErrBackingOff is returned while a dead plugin waits for its next restart.
type ErrBackingOff struct {
	Block string
	Until time.Time
	Cause error
}

func (e *ErrBackingOff) Unwrap() error { return e.Cause }

func (e *ErrBackingOff) Error() string {
	return fmt.Sprintf("plugin %q is down, next start in %s (last error: %v)", e.Block, time.Until(e.Until).Round(time.Millisecond), e.Cause)
}

// get returns a live, configured plugin, starting or restarting it if needed.
func (i *Instance) get(ctx context.Context) (*sdk.Process, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return nil, fmt.Errorf("plugin %q is stopped", i.spec.Block)
	}
	if i.proc != nil && !i.proc.Exited() {
		return i.proc, nil
	}
	if i.proc != nil {
		// It died since last use.
		i.proc.Kill()
		i.proc = nil
		i.noteFailure(fmt.Errorf("process exited"))
	}
	if now := time.Now(); now.Before(i.notBefore) {
		return nil, &ErrBackingOff{Block: i.spec.Block, Until: i.notBefore, Cause: i.lastErr}
	}
	restart := !i.started.IsZero()
	// Starting and configuring a process is bounded by the start timeout,
	// not by the deadline of the call that happened to need it: a chain
	// with a short call timeout must still be able to (re)start its plugins.
	// Cancelling the caller (stopping the chain, shutting down) does abandon
	// the start.
	startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), i.h.opts.StartTimeout)
	defer cancel()
	stopCancel := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel()
		}
	})
	defer stopCancel()
	p, err := i.start(startCtx)
	i.setStartErr(err)
	if err != nil {
		i.noteFailure(err)
		return nil, err
	}
	i.proc = p
	i.started = time.Now()
	if restart {
		i.restarts++
		i.h.opts.Metrics.PluginRestarts.WithLabelValues(i.spec.Block).Inc()
		i.logger.Warn("plugin restarted", "plugin", i.spec.Plugin, "restarts", i.restarts, "pid", p.Pid())
	} else {
		i.logger.Debug("plugin started", "plugin", i.spec.Plugin, "pid", p.Pid())
	}
	return p, nil
}

// noteFailure schedules the next start: quick deaths double the backoff.
func (i *Instance) noteFailure(err error) {
	i.lastErr = err
	if !i.started.IsZero() && time.Since(i.started) > stableAfter {
		i.backoff = i.h.opts.Backoff
	}
	i.notBefore = time.Now().Add(i.backoff)
	i.logger.Error("plugin down", "plugin", i.spec.Plugin, "error", err, "retry_in", i.backoff)
	i.backoff = min(i.backoff*2, i.h.opts.MaxBackoff)
}

func (i *Instance) start(ctx context.Context) (*sdk.Process, error) {
	b, err := i.h.binary(i.spec.Plugin, i.spec.SHA256)
	if err != nil {
		return nil, &StartError{Plugin: i.spec.Plugin, Err: err}
	}
	p, err := i.h.launch(ctx, b.Found, i.spec.Kind, b.sum, i.logger, "run")
	if err != nil {
		return nil, err
	}
	if err := p.Plugin.Configure(ctx, i.spec.Config); err != nil {
		p.Kill()
		// A configuration the plugin refuses is not a crash: the block
		// stays down, retried with the same capped backoff, since what it
		// refers to (a file, a cluster) may yet appear.
		return nil, &StartError{Plugin: i.spec.Plugin, Err: fmt.Errorf("plugin %q rejected its configuration: %w", i.spec.Block, err)}
	}
	return p, nil
}

func (i *Instance) setStartErr(err error) {
	i.statusMu.Lock()
	i.startErr = err
	i.statusMu.Unlock()
}

// Failure is why the plugin cannot run: its last start or configuration
// failed, and it is retried with backoff. Nil while it runs or has not been
// needed yet.
func (i *Instance) Failure() error {
	i.statusMu.Lock()
	defer i.statusMu.Unlock()
	return i.startErr
}

// Pid is the current process id, 0 when not running.
func (i *Instance) Pid() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.proc == nil || i.proc.Exited() {
		return 0
	}
	return i.proc.Pid()
}

// Restarts is how many times the process was restarted.
func (i *Instance) Restarts() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.restarts
}

// Stop kills the process; the instance cannot be used again.
func (i *Instance) Stop() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.stopped = true
	if i.proc != nil {
		i.proc.Kill()
		i.proc = nil
	}
}

// call times one plugin call and records it.
func call[T any](ctx context.Context, i *Instance, method string, f func(*sdk.Process) (T, error)) (T, error) {
	var zero T
	p, err := i.get(ctx)
	if err != nil {
		return zero, err
	}
	start := time.Now()
	out, err := f(p)
	result := "ok"
	if err != nil {
		result = "error"
		err = fmt.Errorf("%s %q: %s: %w", i.spec.Kind, i.spec.Block, method, err)
	}
	i.h.opts.Metrics.PluginCalls.WithLabelValues(i.spec.Block, method, result).Observe(time.Since(start).Seconds())
	return out, err
}

// Collect calls a collector.
func (i *Instance) Collect(ctx context.Context, t sdk.Target) (sdk.Snapshot, error) {
	return call(ctx, i, "Collect", func(p *sdk.Process) (sdk.Snapshot, error) {
		return as[sdk.Collector](p.Plugin).Collect(ctx, t)
	})
}

// Evaluate calls an evaluator.
func (i *Instance) Evaluate(ctx context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	return call(ctx, i, "Evaluate", func(p *sdk.Process) (sdk.EvaluateResponse, error) {
		return as[sdk.Evaluator](p.Plugin).Evaluate(ctx, req)
	})
}

// Inventory calls a realizer.
func (i *Instance) Inventory(ctx context.Context, t sdk.Target) ([]sdk.Unit, error) {
	return call(ctx, i, "Inventory", func(p *sdk.Process) ([]sdk.Unit, error) {
		return as[sdk.Realizer](p.Plugin).Inventory(ctx, t)
	})
}

// Realize calls a realizer.
func (i *Instance) Realize(ctx context.Context, req sdk.RealizeRequest) (string, error) {
	return call(ctx, i, "Realize", func(p *sdk.Process) (string, error) {
		return as[sdk.Realizer](p.Plugin).Realize(ctx, req)
	})
}

// RealizeParallelismOverrides calls a realizer.
func (i *Instance) RealizeParallelismOverrides(ctx context.Context, req sdk.OverridesRequest[int64]) (string, error) {
	return call(ctx, i, "RealizeParallelismOverrides", func(p *sdk.Process) (string, error) {
		return as[sdk.Realizer](p.Plugin).RealizeParallelismOverrides(ctx, req)
	})
}

// RealizeConfigOverrides calls a realizer.
func (i *Instance) RealizeConfigOverrides(ctx context.Context, req sdk.OverridesRequest[string]) (string, error) {
	return call(ctx, i, "RealizeConfigOverrides", func(p *sdk.Process) (string, error) {
		return as[sdk.Realizer](p.Plugin).RealizeConfigOverrides(ctx, req)
	})
}

// CollectBatch calls a collector for many targets at once: one batch RPC per
// sdk.MaxBatch targets when the plugin speaks protocol 2, else one call per
// target. The results have the targets' order and length, each with its own
// error; the error means the whole call failed (the process is down or
// backing off, the deadline passed), with the same restart and backoff as
// the single calls.
func (i *Instance) CollectBatch(ctx context.Context, targets []sdk.Target) ([]sdk.CollectResult, error) {
	return call(ctx, i, "CollectBatch", func(p *sdk.Process) ([]sdk.CollectResult, error) {
		return p.CollectBatch(ctx, targets)
	})
}

// InventoryBatch calls a realizer for many targets at once, as CollectBatch.
func (i *Instance) InventoryBatch(ctx context.Context, targets []sdk.Target) ([]sdk.InventoryResult, error) {
	return call(ctx, i, "InventoryBatch", func(p *sdk.Process) ([]sdk.InventoryResult, error) {
		return p.InventoryBatch(ctx, targets)
	})
}

// EvaluateBatch calls an evaluator for many requests at once, as
// CollectBatch.
func (i *Instance) EvaluateBatch(ctx context.Context, reqs []sdk.EvaluateRequest) ([]sdk.EvaluateResult, error) {
	return call(ctx, i, "EvaluateBatch", func(p *sdk.Process) ([]sdk.EvaluateResult, error) {
		return p.EvaluateBatch(ctx, reqs)
	})
}

// as converts a dispensed plugin to its kind. Launch dispensed the client of
// the instance's kind, so only a runner bug (calling Collect on a realizer
// instance) can make this fail.
func as[T sdk.Plugin](p sdk.Plugin) T { return p.(T) }
