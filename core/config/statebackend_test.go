package config

import (
	"strings"
	"testing"
	"time"
)

func TestStateBackend(t *testing.T) {
	cfg, diags := Parse([]byte(`state {
  backend        = "kubernetes"
  namespace      = "ebb"
  in_cluster     = true
  shards         = 8
  lease_duration = "6s"
  renew_deadline = "4s"
  retry_period   = "1s"
  keep_decisions = 50
}
`), "s.hcl", nil, newFakeResolver())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := StateBackend{Backend: BackendKubernetes, Namespace: "ebb", InCluster: true, Name: "ebb", Shards: 8,
		LeaseDuration: 6 * time.Second, RenewDeadline: 4 * time.Second, RetryPeriod: time.Second}
	if cfg.State != want || cfg.KeepDecisions != 50 {
		t.Fatalf("state = %+v, keep_decisions %d\nwant    %+v, 50", cfg.State, cfg.KeepDecisions, want)
	}

	cfg, diags = Parse([]byte(`state { path = "x.db" }`), "s.hcl", nil, newFakeResolver())
	if diags.HasErrors() || cfg.State.Backend != BackendBolt || !strings.HasSuffix(cfg.StatePath, "/x.db") {
		t.Fatalf("bbolt default: %+v %s %v", cfg.State, cfg.StatePath, diags)
	}
}

func TestStateBackendBad(t *testing.T) {
	tests := []struct{ src, want string }{
		{`state { backend = "etcd" }`, `1:19: Invalid state backend: backend "etcd" is not "bbolt"`},
		{`state { namespace = "ebb" }`, `1:21: Setting of another backend: namespace applies to backend = "kubernetes" only`},
		{"state {\n  backend = \"kubernetes\"\n  path = \"x.db\"\n}", `3:10: Setting of another backend: path applies to backend = "bbolt" only`},
		{"state {\n  backend = \"kubernetes\"\n  namespace = \"Not_DNS\"\n}", `3:15: Invalid state namespace: "Not_DNS" is not a DNS label`},
		{"state {\n  backend = \"kubernetes\"\n  shards = 0\n}", `3:12: Invalid state shards: shards must be a whole number from 1 to 1024`},
		{"state {\n  backend = \"kubernetes\"\n  lease_duration = \"5s\"\n  renew_deadline = \"5s\"\n}", `3:20: Invalid lease timing: renew_deadline 5s must be shorter than lease_duration 5s`},
		{"state {\n  backend = \"kubernetes\"\n  lease_duration = \"1500ms\"\n}", `3:20: Invalid lease timing: lease_duration 1.5s must be whole seconds`},
		{"state {\n  backend = \"kubernetes\"\n  in_cluster = true\n  kubeconfig = \"k\"\n}", `in_cluster cannot be combined with kubeconfig`},
		{"state {\n  backend = \"kubernetes\"\n  keep_for = \"1h\"\n}", `3:14: Setting of another backend: keep_for applies to backend = "bbolt" only`},
		{"state {\n  backend = \"kubernetes\"\n  keep_decisions = 5000\n}", `3:20: Invalid keep_decisions: keep_decisions must be at most 1000 with backend = "kubernetes"`},
		{"state {\n  backend = \"kubernetes\"\n  lease = \"5s\"\n}", `3:3: Unsupported argument: An argument named "lease" is not expected here`},
	}
	for _, tt := range tests {
		_, diags := Parse([]byte(tt.src), "s.hcl", nil, newFakeResolver())
		if got := FormatDiagnostics(diags); !strings.Contains(got, tt.want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}
