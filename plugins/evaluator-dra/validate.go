package dra

import (
	"context"
	"encoding/json"

	"github.com/ebbscale/ebb/sdk"
)

var _ sdk.ConfigValidator = (*Evaluator)(nil)

// ValidateConfig runs Configure's checks (unit-prefix) on an evaluator of
// its own; the policy has ValidatePolicy.
func (e *Evaluator) ValidateConfig(ctx context.Context, raw json.RawMessage) ([]sdk.Problem, error) {
	return sdk.ProblemsOf(New().Configure(ctx, raw), ConfigSchema()), nil
}
