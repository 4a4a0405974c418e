package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ebbscale/ebb/sdk"
)

var _ sdk.ConfigValidator = (*Realizer)(nil)

// ValidateConfig runs Configure's checks of the config (the command and its
// placeholders, vars, env, workdir, the program) without Configure's side
// effect: the directories are checked to be creatable and writable, not
// created, so `ebb validate` leaves the host as it found it.
func (r *Realizer) ValidateConfig(_ context.Context, raw json.RawMessage) ([]sdk.Problem, error) {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return []sdk.Problem{{Message: fmt.Sprintf("config is not a JSON object: %v", err)}}, nil
	}
	scratch, err := os.MkdirTemp("", "ebb-validate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	var problems []sdk.Problem
	for _, key := range []string{"state-dir", "log-dir"} {
		dir, _ := obj[key].(string)
		if strings.TrimSpace(dir) == "" {
			continue // parseConfig says whether it is required
		}
		if err := writableDir(dir); err != nil {
			problems = append(problems, sdk.Problem{Attribute: key, Message: fmt.Sprintf("%s %s: %v", key, dir, err)})
		}
		obj[key] = filepath.Join(scratch, key)
	}
	checked, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	_, err = parseConfig(checked)
	return append(problems, sdk.ProblemsOf(err, ConfigSchema())...), nil
}

// writableDir tells whether dir is, or could be created as, a directory
// this process can write to: the nearest part of it that exists must be a
// writable directory.
func writableDir(dir string) error {
	p, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", p)
			}
			if err := syscall.Access(p, 2 /* W_OK */); err != nil {
				return fmt.Errorf("%s is not writable: %w", p, err)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("no part of it exists")
		}
		p = parent
	}
}
