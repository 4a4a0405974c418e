package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/sdk"
)

// The questions a configuration load asks plugins, answered by their
// validation processes (validate.go) and kept in the host's cache.

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
		if info.ProtocolVersion < sdk.MinProtocolVersion || info.ProtocolVersion > sdk.ProtocolVersion {
			return info, fmt.Errorf("plugin %q speaks protocol %d, this ebb speaks %d to %d", plugin, info.ProtocolVersion, sdk.MinProtocolVersion, sdk.ProtocolVersion)
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
