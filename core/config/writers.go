package config

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/ebbscale/ebb/sdk"
)

// TargetIdentifier is implemented by a Resolver that can ask a realizer
// plugin which platform object each target means under a config (see
// sdk.TargetIdentifier). It answers sdk.ErrNoTargetIdentity for a plugin
// that cannot tell.
type TargetIdentifier interface {
	TargetIdentities(plugin, sha256 string, config json.RawMessage, targets []string) ([]string, error)
}

// claim is a chain's claim to write to its target.
type claim struct {
	chain *Chain
	at    hcl.Range
}

// oneWriter refuses two chains, enabled or not, whose realizers would act on
// the same platform object. The object is what the realizer says it is;
// a realizer that cannot say is identified by its plugin, config and target,
// so identical blocks under two names still clash.
func (l *loader) oneWriter(claims []claim) hcl.Diagnostics {
	var diags hcl.Diagnostics
	// One question per realizer block, for all of its targets.
	byBlock := map[string][]int{}
	var order []string
	for i, c := range claims {
		if _, ok := byBlock[c.chain.Realizer]; !ok {
			order = append(order, c.chain.Realizer)
		}
		byBlock[c.chain.Realizer] = append(byBlock[c.chain.Realizer], i)
	}
	keys := make([]string, len(claims))
	shown := make([]string, len(claims))
	for _, name := range order {
		b := l.cfg.Realizers[name]
		if b == nil {
			continue // the block's own error is reported already
		}
		idx := byBlock[name]
		targets := make([]string, len(idx))
		for j, i := range idx {
			targets[j] = claims[i].chain.Target
		}
		ids, err := l.targetIdentities(b, targets)
		if err != nil {
			for _, i := range idx {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot identify target",
					Detail:  fmt.Sprintf("Realizer %q cannot say what target %q is: %v", name, claims[i].chain.Target, err),
					Subject: claims[i].at.Ptr()})
			}
			continue
		}
		for j, i := range idx {
			if ids != nil && ids[j] != "" {
				keys[i] = b.Plugin + "\x00" + ids[j]
				shown[i] = ids[j]
			} else {
				keys[i] = b.Plugin + "\x00" + string(b.Config) + "\x00" + targets[j]
				shown[i] = fmt.Sprintf("plugin %q with the same config and target", b.Plugin)
			}
		}
	}
	first := map[string]int{}
	for i, c := range claims {
		if keys[i] == "" {
			continue
		}
		w, ok := first[keys[i]]
		if !ok {
			first[keys[i]] = i
			continue
		}
		prev := claims[w]
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Target realized twice",
			Detail: fmt.Sprintf("Chain %q realizes target %q with realizer %q, as chain %q already does at %s (through realizer %q, target %q): "+
				"both act on the same object, %s; only one chain may write to it.",
				c.chain.Name, c.chain.Target, c.chain.Realizer, prev.chain.Name, posString(prev.at), prev.chain.Realizer, prev.chain.Target, shown[i]),
			Subject: c.at.Ptr(),
		})
	}
	return diags
}

// targetIdentities asks the resolver, if it can; nil means use the
// fallback for every target.
func (l *loader) targetIdentities(b *PluginBlock, targets []string) ([]string, error) {
	ti, ok := l.resolver.(TargetIdentifier)
	if !ok {
		return nil, nil
	}
	ids, err := ti.TargetIdentities(b.Plugin, b.SHA256, b.Config, targets)
	if errors.Is(err, sdk.ErrNoTargetIdentity) {
		return nil, nil
	}
	if err == nil && len(ids) != len(targets) {
		return nil, fmt.Errorf("asked about %d targets, got %d answers", len(targets), len(ids))
	}
	return ids, err
}
