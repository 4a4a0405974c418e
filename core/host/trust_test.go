package host

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// TestPluginDirRefusesWhatOthersCouldHaveWritten is ssh's rule for plugin
// binaries: each case makes one path writable by (or owned by) someone else.
func TestPluginDirRefusesWhatOthersCouldHaveWritten(t *testing.T) {
	bin := sdktest.Build(t, "github.com/ebbscale/ebb/core/testdata/testplugin")
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		spoil      func(dir, file string) error
	}{
		{"world-writable file", "writable by group or others", func(_, f string) error { return os.Chmod(f, 0o777) }},
		{"group-writable file", "writable by group or others", func(_, f string) error { return os.Chmod(f, 0o775) }},
		{"world-writable dir", "writable by group or others", func(d, _ string) error { return os.Chmod(d, 0o777) }},
		{"file of another user", "owned by uid 4242", func(_, f string) error { return os.Lchown(f, 4242, 4242) }},
		{"dir of another user", "owned by uid 4242", func(d, _ string) error { return os.Lchown(d, 4242, 4242) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "plugins")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "test-collector")
			if err := os.WriteFile(file, content, 0o755); err != nil {
				t.Fatal(err)
			}
			h := New(Options{PluginDir: dir})
			defer h.Close()
			if _, err := h.Info(sdk.KindCollector, "test-collector", ""); err != nil {
				t.Fatalf("a sound plugin_dir: %v", err)
			}
			if err := tc.spoil(dir, file); err != nil {
				if os.Getuid() != 0 && strings.Contains(tc.name, "another user") {
					t.Skip("chown needs root")
				}
				t.Fatal(err)
			}
			h = New(Options{PluginDir: dir})
			defer h.Close()
			_, err := h.Info(sdk.KindCollector, "test-collector", "")
			if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "sha256") {
				t.Fatalf("want a refusal saying %q and offering a pin, got %v", tc.want, err)
			}
			inst := New(Options{PluginDir: dir}).Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-collector", Config: []byte(`{"file":"x"}`)})
			defer inst.Stop()
			if _, err := inst.Collect(t.Context(), sdk.Target{}); !errors.Is(err, ErrUntrusted) {
				t.Fatalf("the instance ran it anyway: %v", err)
			}
			// A pin vouches for the binary wherever it lies.
			if _, err := h.Info(sdk.KindCollector, "test-collector", sum(t, file)); err != nil {
				t.Fatalf("pinned: %v", err)
			}
		})
	}
}
