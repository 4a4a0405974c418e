package process

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/ebbscale/ebb/sdk"
)

var _ sdk.TargetIdentifier = (*Realizer)(nil)

// TargetIdentity names what a target means here: the units of that target
// recorded in one state directory (the directory, resolved, is where a
// realizer finds and adopts units, whatever its command).
func (r *Realizer) TargetIdentity(_ context.Context, raw json.RawMessage, target string) (string, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", Name, err)
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return "", fmt.Errorf("%s: state-dir %s: %w", Name, cfg.StateDir, err)
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return fmt.Sprintf("state-dir %s, target %s", dir, target), nil
}
