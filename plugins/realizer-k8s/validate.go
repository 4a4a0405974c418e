package k8s

import (
	"context"
	"encoding/json"

	"github.com/ebbscale/ebb/sdk"
)

var _ sdk.ConfigValidator = (*Realizer)(nil)

// ValidateConfig runs Configure's checks of the config (namespace, mode,
// the unit mode's image and template knobs, the pod template) without
// connecting to a cluster, so `ebb validate` reports them at their
// attributes.
func (r *Realizer) ValidateConfig(_ context.Context, raw json.RawMessage) ([]sdk.Problem, error) {
	_, err := parseConfig(raw)
	return sdk.ProblemsOf(err, configSchema()), nil
}
