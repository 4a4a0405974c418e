package spark

import (
	"context"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
)

// Unit-mode inventory: a restarted runner (or plugin) learns everything
// from the API server, the labels and status.applicationState.

func (r *Realizer) unitApps(ctx context.Context, cfg Config, t sdk.Target) ([]unstructured.Unstructured, error) {
	if err := checkTarget(t); err != nil {
		return nil, err
	}
	sel := labels.Set{LabelManagedBy: ManagedByValue, LabelChain: t.Chain, LabelGroup: t.Name}.String()
	items, err := r.list(ctx, cfg.Namespace, sel)
	if err != nil {
		return nil, fmt.Errorf("realizer-spark: inventory of %s: %w", t, err)
	}
	return items, nil
}

// unitInventory lists the target's units from their applications, with the
// phase read from status.applicationState.state (see unitPhase).
func (r *Realizer) unitInventory(ctx context.Context, cfg Config, t sdk.Target) ([]sdk.Unit, error) {
	items, err := r.unitApps(ctx, cfg, t)
	if err != nil {
		return nil, err
	}
	now := r.now()
	units := make([]sdk.Unit, 0, len(items))
	for i := range items {
		v, err := viewOf(&items[i])
		if err != nil {
			return nil, fmt.Errorf("realizer-spark: inventory of %s: %w", t, err)
		}
		size, _ := strconv.ParseInt(v.Labels[LabelThreads], 10, 64)
		lbl := make(map[string]string, len(v.Labels)+1)
		for k, val := range v.Labels {
			lbl[k] = val
		}
		lbl[LabelState] = stateLabel(v.state())
		u := sdk.Unit{
			ID:        v.Labels[LabelUnit],
			Size:      size,
			Phase:     unitPhase(v, now.Sub(v.CreationTimestamp.Time) >= cfg.BootTimeout.D()),
			CreatedAt: v.CreationTimestamp.Time.UTC(),
			Labels:    lbl,
		}
		if v.DeletionTimestamp != nil {
			u.DrainStartedAt = v.DeletionTimestamp.Time.UTC()
		}
		units = append(units, u)
	}
	kubeapi.SortUnits(units)
	return units, nil
}

// unitPhase maps an application's state to a unit phase:
//   - draining: deleted, its driver still finishing (deletion timestamp);
//   - running: RUNNING;
//   - booting: submitted or being resubmitted, the driver not running yet;
//   - requested: not submitted yet, within boot-timeout;
//   - unknown: dead (FAILED, SUBMISSION_FAILED, COMPLETED...), or never
//     submitted within boot-timeout. Such a unit is no capacity: its
//     optimizer does not run. It stays listed, so evaluator-dra sees a unit
//     without a live worker and restarts it (Restart resubmits it) or
//     releases it, rather than forgetting it.
func unitPhase(v *view, pastBoot bool) sdk.Phase {
	s := v.state()
	switch {
	case v.DeletionTimestamp != nil:
		return sdk.PhaseDraining
	case s == StateRunning:
		return sdk.PhaseRunning
	case s == StateNew && !pastBoot:
		return sdk.PhaseRequested
	case s == StateNew, dead(s), s == StateSuspended:
		return sdk.PhaseUnknown
	}
	return sdk.PhaseBooting
}
