package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ebbscale/ebb/sdk"
)

// State backends.
const (
	BackendBolt       = "bbolt"
	BackendKubernetes = "kubernetes"
)

// StateBackend is the `state { }` block beyond path: where the runner keeps
// its state, and with the kubernetes backend how replicas share the chains.
type StateBackend struct {
	// Backend is BackendBolt (the default, one process: the file at
	// Config.StatePath) or BackendKubernetes (ConfigMaps and Leases).
	Backend string
	// Namespace, Kubeconfig, Context and InCluster reach the cluster.
	Namespace, Kubeconfig, Context string
	InCluster                      bool
	// Name starts the names of the ConfigMaps and Leases, so that two
	// installations can share a namespace.
	Name string
	// Shards is how many Leases the chains are spread over.
	Shards int
	// LeaseDuration, RenewDeadline and RetryPeriod are the Leases' timing,
	// as in client-go's leader election.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// KubernetesKeepDecisions is keep_decisions' default with the kubernetes
// backend, and maxKubernetesKeepDecisions its bound (ConfigMaps hold 1 MiB).
const (
	KubernetesKeepDecisions    = 100
	maxKubernetesKeepDecisions = 1000
)

// Defaults of the kubernetes backend (client-go's leader election timing).
var defaultStateBackend = StateBackend{
	Backend: BackendBolt, Namespace: "default", Name: "ebb", Shards: 32,
	LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
}

// stateBlock decodes `state { }` into cfg.StatePath and cfg.State.
func (l *loader) stateBlock(b *hcl.Block, ctx *hcl.EvalContext) hcl.Diagnostics {
	cfg := l.cfg
	attrs, diags := blockAttrs(b, "path", "backend", "namespace", "kubeconfig", "context", "in_cluster", "name",
		"shards", "lease_duration", "renew_deadline", "retry_period", "keep_decisions", "keep_for")
	diags = append(diags, retention(cfg, attrs, ctx)...)
	str := func(name string, into *string, check func(string) string) {
		a, ok := attrs[name]
		if !ok {
			return
		}
		s, d := evalString(a, ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			return
		}
		if why := check(s); why != "" {
			diags = append(diags, attrError(a, "Invalid state "+name, why))
			return
		}
		*into = s
	}
	dur := func(name string, into *time.Duration) {
		if a, ok := attrs[name]; ok {
			v, d := evalPositiveDuration(a, ctx)
			diags = append(diags, d...)
			if !d.HasErrors() {
				*into = v
			}
		}
	}
	count := func(name string, into *int, max int) {
		a, ok := attrs[name]
		if !ok {
			return
		}
		v, d := evalAs(a, sdk.TypeNumber, ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			return
		}
		f, _ := v.(json.Number).Float64()
		if f != float64(int(f)) || f < 1 || f > float64(max) {
			diags = append(diags, attrError(a, "Invalid state "+name, fmt.Sprintf("%s must be a whole number from 1 to %d.", name, max)))
			return
		}
		*into = int(f)
	}
	notEmpty := func(s string) string {
		if s == "" {
			return "it must not be empty."
		}
		return ""
	}
	dnsLabel := func(s string) string {
		if msgs := validation.IsDNS1123Label(s); len(msgs) > 0 {
			return fmt.Sprintf("%q is not a DNS label: %s.", s, strings.Join(msgs, "; "))
		}
		return ""
	}
	var path string
	str("path", &path, notEmpty)
	if path != "" {
		cfg.StatePath = l.abs(path)
	}
	s := &cfg.State
	str("backend", &s.Backend, func(v string) string {
		if v != BackendBolt && v != BackendKubernetes {
			return fmt.Sprintf("backend %q is not %q (a local file, the default) or %q (ConfigMaps and Leases shared by replicas).", v, BackendBolt, BackendKubernetes)
		}
		return ""
	})
	str("namespace", &s.Namespace, dnsLabel)
	str("kubeconfig", &s.Kubeconfig, notEmpty)
	str("context", &s.Context, notEmpty)
	// The name goes into object names: "<name>-shard-31-of-32".
	str("name", &s.Name, func(v string) string {
		if why := dnsLabel(v); why != "" {
			return why
		}
		if len(v) > 40 {
			return fmt.Sprintf("%q is longer than 40 characters.", v)
		}
		return ""
	})
	if a, ok := attrs["in_cluster"]; ok {
		v, d := evalBool(a, ctx)
		diags = append(diags, d...)
		s.InCluster = v
		if v && (s.Kubeconfig != "" || s.Context != "") {
			diags = append(diags, attrError(a, "Invalid state in_cluster", "in_cluster cannot be combined with kubeconfig or context."))
		}
	}
	count("shards", &s.Shards, 1024)
	dur("lease_duration", &s.LeaseDuration)
	dur("renew_deadline", &s.RenewDeadline)
	dur("retry_period", &s.RetryPeriod)

	if s.Backend == BackendBolt {
		for _, name := range []string{"namespace", "kubeconfig", "context", "in_cluster", "name", "shards", "lease_duration", "renew_deadline", "retry_period"} {
			if a, ok := attrs[name]; ok {
				diags = append(diags, attrError(a, "Setting of another backend", fmt.Sprintf("%s applies to backend = %q only.", name, BackendKubernetes)))
			}
		}
		return diags
	}
	if a, ok := attrs["path"]; ok {
		diags = append(diags, attrError(a, "Setting of another backend", fmt.Sprintf("path applies to backend = %q only: the kubernetes backend keeps its state in ConfigMaps.", BackendBolt)))
	}
	if a, ok := attrs["keep_for"]; ok {
		diags = append(diags, attrError(a, "Setting of another backend", fmt.Sprintf("keep_for applies to backend = %q only: the kubernetes backend bounds a chain's log by keep_decisions and by its ConfigMap's size.", BackendBolt)))
	}
	// Every round rewrites a chain's whole ConfigMap: its log is kept short
	// unless asked otherwise, and never past what fits an object.
	if a, ok := attrs["keep_decisions"]; !ok {
		cfg.KeepDecisions = KubernetesKeepDecisions
	} else if cfg.KeepDecisions > maxKubernetesKeepDecisions {
		diags = append(diags, attrError(a, "Invalid keep_decisions", fmt.Sprintf("keep_decisions must be at most %d with backend = %q: a chain's log lives in one ConfigMap, rewritten every round.", maxKubernetesKeepDecisions, BackendKubernetes)))
	}
	at := b.DefRange
	if a, ok := attrs["lease_duration"]; ok {
		at = a.Expr.Range()
	}
	switch {
	case s.LeaseDuration < time.Second || s.LeaseDuration%time.Second != 0:
		diags = append(diags, rangeError(at, "Invalid lease timing", fmt.Sprintf("lease_duration %s must be whole seconds, at least 1s: a Lease counts seconds.", s.LeaseDuration)))
	case s.RenewDeadline >= s.LeaseDuration:
		diags = append(diags, rangeError(at, "Invalid lease timing", fmt.Sprintf("renew_deadline %s must be shorter than lease_duration %s: a replica stops acting at its renew deadline, before another may take over.", s.RenewDeadline, s.LeaseDuration)))
	case s.RetryPeriod >= s.RenewDeadline:
		diags = append(diags, rangeError(at, "Invalid lease timing", fmt.Sprintf("retry_period %s must be shorter than renew_deadline %s, or no renewal is retried in time.", s.RetryPeriod, s.RenewDeadline)))
	}
	return diags
}

func rangeError(r hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()}
}
