package collectorams

import (
	"context"
	"encoding/json"

	"github.com/ebbscale/ebb/sdk"
)

var _ sdk.ConfigValidator = (*Collector)(nil)

// ValidateConfig runs Configure's checks (URLs, auth, time zone, CA file,
// bounds) on a collector of its own, so nothing of this one changes and AMS
// is not contacted.
func (c *Collector) ValidateConfig(ctx context.Context, raw json.RawMessage) ([]sdk.Problem, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	return sdk.ProblemsOf(New().Configure(ctx, raw), info.ConfigSchema), nil
}
