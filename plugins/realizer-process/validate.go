package process

import (
	"context"
	"encoding/json"

	"github.com/ebbscale/ebb/sdk"
)

var _ sdk.ConfigValidator = (*Realizer)(nil)

// ValidateConfig runs Configure's checks of the config: the command and its
// placeholders, vars and env, the directories and the program. Like
// Configure, it creates state-dir and log-dir to prove them writable: a
// directory that cannot be created is a configuration problem on this host.
// It adopts no units and touches no pid file.
func (r *Realizer) ValidateConfig(_ context.Context, raw json.RawMessage) ([]sdk.Problem, error) {
	_, err := parseConfig(raw)
	return sdk.ProblemsOf(err, ConfigSchema()), nil
}
