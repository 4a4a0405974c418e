package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHTTPTokenAndAllowedHosts(t *testing.T) {
	dir := t.TempDir()
	load := func(http string) (*Config, string) {
		p := filepath.Join(dir, "ebb.hcl")
		if err := os.WriteFile(p, []byte("http {\n"+http+"\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, diags := Load(p, nil, newFakeResolver())
		return cfg, FormatDiagnostics(diags)
	}
	t.Setenv("EBB_TEST_TOKEN", "from-env")
	cfg, diags := load(`token = env("EBB_TEST_TOKEN")
allowed_hosts = ["ebb.monitoring.svc"]`)
	if cfg == nil || cfg.HTTPToken != "from-env" || strings.Join(cfg.HTTPAllowedHosts, ",") != "ebb.monitoring.svc" {
		t.Fatalf("config %+v: %s", cfg, diags)
	}
	_, diags = load(`token = " padded "`)
	if !strings.Contains(diags, "ebb.hcl:2:9: Invalid HTTP token") || strings.Contains(diags, "padded") {
		t.Errorf("a bad token: %s", diags)
	}
	_, diags = load(`allowed_hosts = ["ebb:9464"]`)
	if !strings.Contains(diags, "ebb.hcl:2:17: Invalid allowed host") {
		t.Errorf("a host with a port: %s", diags)
	}
}
