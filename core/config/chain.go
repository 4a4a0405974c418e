package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/ebbscale/ebb/sdk"
)

// ref is the value of collector.NAME, evaluator.NAME and realizer.NAME in
// a chain. A capsule rather than a string, so that a chain cannot reference
// a block by a string that merely looks like one, and so that conditionals
// (var.prod ? realizer.k8s : realizer.process) and indexing
// (realizer[var.realizer]) work on references like on any other value.
type ref struct {
	kind sdk.Kind
	name string
}

var refType = cty.Capsule("plugin block reference", reflect.TypeOf(ref{}))

var chainSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "collectors"}, {Name: "evaluators"}, {Name: "realizer"}, {Name: "target"},
		{Name: "interval"}, {Name: "jitter"}, {Name: "timeout"}, {Name: "max_snapshot_age"}, {Name: "enabled"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "policy"}},
}

// chains decodes the chain blocks, after the plugin blocks they reference.
func (l *loader) chains(blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	ctx := l.evalContext(map[string]cty.Value{
		"collector": l.refObject(sdk.KindCollector),
		"evaluator": l.refObject(sdk.KindEvaluator),
		"realizer":  l.refObject(sdk.KindRealizer),
	})
	seen := map[string]*hcl.Block{}
	var claims []claim
	mentioned := map[sdk.Kind]map[string]bool{}
	for _, blk := range blocks {
		name := blk.Labels[0]
		if strings.TrimSpace(name) == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid chain name", Detail: "A chain needs a name.", Subject: blk.LabelRanges[0].Ptr()})
			continue
		}
		if first, ok := seen[name]; ok {
			diags = append(diags, duplicateName("chain", name, "defined", first, blk))
			continue
		}
		seen[name] = blk
		ch, target, d := l.chain(blk, ctx, mentioned)
		diags = append(diags, d...)
		if target != nil && ch.Realizer != "" && ch.Target != "" {
			claims = append(claims, claim{chain: ch, at: target.Expr.Range()})
		}
		l.cfg.Chains = append(l.cfg.Chains, ch)
	}
	diags = append(diags, l.oneWriter(claims)...)
	// A block a chain mentions but does not pick (the other side of a
	// conditional) is not unused: the next -var may pick it.
	for kind, names := range mentioned {
		for _, b := range l.blocks[kind] {
			if names["*"] || names[b.Name] {
				l.mentioned[b] = true
			}
		}
	}
	return diags
}

func (l *loader) refObject(kind sdk.Kind) cty.Value {
	m := map[string]cty.Value{}
	for _, b := range l.blocks[kind] {
		m[b.Name] = cty.CapsuleVal(refType, &ref{kind: kind, name: b.Name})
	}
	return cty.ObjectVal(m)
}

// chain decodes one chain block. It also returns the target attribute, for
// the one-writer check.
func (l *loader) chain(blk *hcl.Block, ctx *hcl.EvalContext, mentioned map[sdk.Kind]map[string]bool) (*Chain, *hcl.Attribute, hcl.Diagnostics) {
	ch := &Chain{Name: blk.Labels[0], Range: blk.DefRange, Enabled: true, Interval: DefaultInterval}
	content, diags := blk.Body.Content(chainSchema)
	suggest(diags, chainSchema)
	attrs := content.Attributes
	for _, a := range attrs {
		mention(a.Expr, mentioned)
	}

	required := func(name, example string) *hcl.Attribute {
		a, ok := attrs[name]
		if !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing required argument",
				Detail:   fmt.Sprintf("Chain %q needs %s = %s.", ch.Name, name, example),
				Subject:  blk.DefRange.Ptr(),
			})
		}
		return a
	}
	var d hcl.Diagnostics
	if a := required("collectors", "[collector.NAME, ...]"); a != nil {
		ch.Collectors, d = refsAttr(a, sdk.KindCollector, true, ctx)
		diags = append(diags, d...)
	}
	evaluatorsAttr := required("evaluators", "[evaluator.NAME, ...]")
	evaluatorsOK := false
	if evaluatorsAttr != nil {
		ch.Evaluators, d = refsAttr(evaluatorsAttr, sdk.KindEvaluator, true, ctx)
		diags = append(diags, d...)
		evaluatorsOK = !d.HasErrors()
	}
	if a := required("realizer", "realizer.NAME"); a != nil {
		names, d := refsAttr(a, sdk.KindRealizer, false, ctx)
		diags = append(diags, d...)
		if len(names) == 1 {
			ch.Realizer = names[0]
		}
	}
	target := required("target", `"NAME"`)
	if target != nil {
		s, d := evalString(target, ctx)
		diags = append(diags, d...)
		if !d.HasErrors() && s == "" {
			diags = append(diags, attrError(target, "Invalid target", "target must not be empty."))
		}
		ch.Target = s
	}

	intervalOK := true
	if a, ok := attrs["interval"]; ok {
		ch.Interval, d = evalPositiveDuration(a, ctx)
		diags = append(diags, d...)
		intervalOK = !d.HasErrors()
		ch.intervalAt = a.Expr.Range()
	}
	ch.Timeout, ch.MaxSnapshotAge = ch.Interval, 2*ch.Interval
	if a, ok := attrs["timeout"]; ok {
		ch.Timeout, d = evalPositiveDuration(a, ctx)
		diags = append(diags, d...)
	}
	if a, ok := attrs["max_snapshot_age"]; ok {
		ch.MaxSnapshotAge, d = evalPositiveDuration(a, ctx)
		diags = append(diags, d...)
	}
	if a, ok := attrs["jitter"]; ok && intervalOK {
		ch.Jitter, d = evalJitter(a, ch.Interval, ctx)
		diags = append(diags, d...)
	}
	if a, ok := attrs["enabled"]; ok {
		ch.Enabled, d = evalBool(a, ctx)
		diags = append(diags, d...)
	}

	policies := content.Blocks.OfType("policy")
	for _, b := range policies[min(1, len(policies)):] {
		diags = append(diags, duplicateBlock("policy", b, policies[0]))
	}
	var policy *hcl.Block
	if len(policies) > 0 {
		policy = policies[0]
	}
	if evaluatorsOK {
		diags = append(diags, l.policy(ch, blk, policy, evaluatorsAttr, ctx)...)
	}

	for _, kind := range []sdk.Kind{sdk.KindCollector, sdk.KindEvaluator, sdk.KindRealizer} {
		for _, n := range ch.blockNames(kind) {
			if b := l.cfg.Block(kind, n); b != nil {
				b.UsedBy = append(b.UsedBy, ch.Name)
			}
		}
	}
	if !diags.HasErrors() {
		ch.Fingerprint = l.fingerprint(ch)
	}
	return ch, target, diags
}

// mention records the blocks an expression names, whether or not its value
// picks them; realizer[var.x] mentions every realizer.
func mention(expr hcl.Expression, mentioned map[sdk.Kind]map[string]bool) {
	for _, tr := range expr.Variables() {
		kind, err := sdk.ParseKind(tr.RootName())
		if err != nil {
			continue
		}
		if mentioned[kind] == nil {
			mentioned[kind] = map[string]bool{}
		}
		name := "*"
		if len(tr) > 1 {
			if step, ok := tr[1].(hcl.TraverseAttr); ok {
				name = step.Name
			}
		}
		mentioned[kind][name] = true
	}
}

func (ch *Chain) blockNames(kind sdk.Kind) []string {
	switch kind {
	case sdk.KindCollector:
		return ch.Collectors
	case sdk.KindEvaluator:
		return ch.Evaluators
	case sdk.KindRealizer:
		if ch.Realizer != "" {
			return []string{ch.Realizer}
		}
	}
	return nil
}

// refsAttr evaluates a chain attribute that references plugin blocks. The
// elements of a list literal are evaluated one by one so that an error points
// at the element at fault.
func refsAttr(a *hcl.Attribute, kind sdk.Kind, many bool, ctx *hcl.EvalContext) ([]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	items := []hcl.Expression{a.Expr}
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && many {
		items = make([]hcl.Expression, len(tup.Exprs))
		for i, e := range tup.Exprs {
			items[i] = e
		}
	}
	var names []string
	where := map[string]hcl.Range{}
	for _, e := range items {
		if d := undefinedIndex(e, ctx); d != nil {
			diags = append(diags, d)
			continue
		}
		v, d := evalExpr(e, ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		refs, ok := refsOf(v)
		if !ok {
			example := kind.String() + ".NAME"
			if many {
				example = "[" + example + ", ...]"
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid reference",
				Detail:   fmt.Sprintf("%s must reference %s blocks, such as %s; got a %s.", a.Name, kind, example, v.Type().FriendlyName()),
				Subject:  e.Range().Ptr(),
			})
			continue
		}
		for _, r := range refs {
			if r.kind != kind {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Wrong kind of block",
					Detail:   fmt.Sprintf("%s must reference %s blocks, but %s.%s is a %s.", a.Name, kind, r.kind, r.name, r.kind),
					Subject:  e.Range().Ptr(),
				})
				continue
			}
			if first, dup := where[r.name]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Duplicate reference",
					Detail:   fmt.Sprintf("%s.%s is already listed at %s.", kind, r.name, posString(first)),
					Subject:  e.Range().Ptr(),
				})
				continue
			}
			where[r.name] = e.Range()
			names = append(names, r.name)
		}
	}
	if !diags.HasErrors() {
		switch {
		case many && len(names) == 0:
			diags = append(diags, attrError(a, "Empty list", fmt.Sprintf("%s must list at least one %s.", a.Name, kind)))
		case !many && len(names) != 1:
			diags = append(diags, attrError(a, "Invalid reference", fmt.Sprintf("%s must reference exactly one %s, got %d.", a.Name, kind, len(names))))
		}
	}
	return names, diags
}

// undefinedIndex explains realizer[var.x] naming no realizer better than
// HCL's "Invalid index".
func undefinedIndex(e hcl.Expression, ctx *hcl.EvalContext) *hcl.Diagnostic {
	ix, ok := e.(*hclsyntax.IndexExpr)
	if !ok {
		return nil
	}
	st, ok := ix.Collection.(*hclsyntax.ScopeTraversalExpr)
	if !ok || len(st.Traversal) != 1 {
		return nil
	}
	kind, err := sdk.ParseKind(st.Traversal.RootName())
	if err != nil {
		return nil
	}
	key, diags := evalExpr(ix.Key, ctx)
	obj, ok := ctx.Variables[kind.String()]
	if diags.HasErrors() || !ok || key.IsNull() || key.Type() != cty.String || !obj.Type().IsObjectType() || obj.Type().HasAttribute(key.AsString()) {
		return nil
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Reference to undefined " + kind.String(),
		Detail:   fmt.Sprintf("No %s %q is defined.", kind, key.AsString()),
		Subject:  ix.Key.Range().Ptr(),
	}
}

// refsOf accepts one reference or a list of them.
func refsOf(v cty.Value) ([]*ref, bool) {
	if v.IsNull() {
		return nil, false
	}
	if v.Type().Equals(refType) {
		return []*ref{v.EncapsulatedValue().(*ref)}, true
	}
	t := v.Type()
	if !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
		return nil, false
	}
	var out []*ref
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() || !e.Type().Equals(refType) {
			return nil, false
		}
		out = append(out, e.EncapsulatedValue().(*ref))
	}
	return out, true
}

// evalJitter reads a jitter written as a share of the interval ("10%") or as
// a duration ("3s"). It may not exceed the interval: ticks would then
// overlap.
func evalJitter(a *hcl.Attribute, interval time.Duration, ctx *hcl.EvalContext) (time.Duration, hcl.Diagnostics) {
	s, diags := evalString(a, ctx)
	if diags.HasErrors() {
		return 0, diags
	}
	var j time.Duration
	if pct, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || p < 0 || p > 100 {
			return 0, hcl.Diagnostics{attrError(a, "Invalid jitter", fmt.Sprintf("jitter %q must be a percentage of the interval between 0%% and 100%%, or a duration such as \"3s\".", s))}
		}
		j = time.Duration(float64(interval) * p / 100)
	} else {
		d, err := sdk.ParseDuration(s)
		if err != nil {
			return 0, hcl.Diagnostics{attrError(a, "Invalid jitter", fmt.Sprintf("jitter: %v; or write a percentage of the interval such as \"10%%\".", err))}
		}
		j = d
	}
	if j > interval {
		return 0, hcl.Diagnostics{attrError(a, "Invalid jitter", fmt.Sprintf("jitter %s is longer than the interval %s.", j, interval))}
	}
	return j, nil
}

// policy decodes a chain's policy block against the union of its evaluators'
// policy schemas, gives each evaluator its own keys, and asks each evaluator
// to validate them.
func (l *loader) policy(ch *Chain, blk, policy *hcl.Block, evaluatorsAttr *hcl.Attribute, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	evs := make([]*PluginBlock, len(ch.Evaluators))
	schemas := make([]sdk.Schema, len(ch.Evaluators))
	for i, n := range ch.Evaluators {
		evs[i] = l.cfg.Evaluators[n]
		if evs[i] == nil || evs[i].Info.Kind != sdk.KindEvaluator {
			// The evaluator block has its own error; without its schema
			// every policy key would look unknown.
			return nil
		}
		schemas[i] = evs[i].Info.PolicySchema
	}
	var body hcl.Body = hcl.EmptyBody()
	where := blk.DefRange
	if policy != nil {
		body, where = policy.Body, policy.DefRange
	}
	// Chains written from one template share their policy's text, which
	// decodes to the same values in this load: decode it once.
	memo, memoOK := l.policyKey(ch, policy)
	if raws, ok := l.policies[memo]; ok && memoOK {
		ch.Policy = make(map[string]json.RawMessage, len(raws))
		for _, ev := range evs {
			ch.Policy[ev.Name] = raws[ev.Name]
			l.checkPolicy(ch, ev, blk, policy)
		}
		return nil
	}
	// Evaluators with a namespace block read only it; the others share the
	// policy block's own keys, where a key two of them read is a clash.
	ns, d := policyNamespaces(body, ch.Evaluators)
	diags = append(diags, d...)
	var flatNames []string
	var flatSchemas []sdk.Schema
	for i, n := range ch.Evaluators {
		if ns[n] == nil {
			flatNames, flatSchemas = append(flatNames, n), append(flatSchemas, schemas[i])
		}
	}
	union, conflicts := unionSchema(flatNames, flatSchemas)
	for _, c := range conflicts {
		diags = append(diags, attrError(evaluatorsAttr, "Conflicting policy schemas", c+"."))
	}
	accept, d := namespacedSchema(union, ch.Evaluators, schemas, evaluatorsAttr)
	diags = append(diags, d...)
	diags = append(diags, policyClashes(body, flatNames, flatSchemas)...)
	_, d = decodeBody(body, union, accept, ctx, where, "")
	diags = append(diags, d...)
	for i, n := range ch.Evaluators {
		if b := ns[n]; b != nil {
			_, d := decodeBody(b.Body, schemas[i], schemas[i], ctx, b.DefRange, n+".")
			diags = append(diags, d...)
		}
	}
	if diags.HasErrors() {
		return diags
	}
	ch.Policy = map[string]json.RawMessage{}
	for _, ev := range evs {
		body, where := body, where
		obj, _ := decodeBody(body, ev.Info.PolicySchema, accept, ctx, where, "")
		if b := ns[ev.Name]; b != nil {
			body, where = b.Body, b.DefRange
			obj, _ = decodeBody(body, ev.Info.PolicySchema, ev.Info.PolicySchema, ctx, where, "")
		}
		if d := withDefaults(ev.Info.PolicySchema, obj, where); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		raw, err := json.Marshal(obj)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot encode policy", Detail: err.Error(), Subject: where.Ptr()})
			continue
		}
		ch.Policy[ev.Name] = raw
		l.checkPolicy(ch, ev, blk, policy)
	}
	if len(diags) == 0 && memoOK {
		l.policies[memo] = ch.Policy
	}
	return diags
}

// attrRange finds the source of a dotted policy or config path: the
// attribute, or else the innermost block on the path that is written out,
// or else the policy or config block.
func attrRange(body hcl.Body, where hcl.Range, path string) hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok || path == "" {
		return where
	}
	cur := where
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		last := i == len(segs)-1
		if a, ok := sb.Attributes[seg]; ok && last {
			return a.SrcRange
		}
		var next *hclsyntax.Block
		for _, b := range sb.Blocks {
			if b.Type == seg {
				next = b
				break
			}
		}
		if next == nil {
			return cur
		}
		cur, sb = next.DefRange(), next.Body
	}
	return cur
}

// fingerprint hashes what defines a chain's behaviour, so a reload can keep
// chains that did not change running. Source positions are left out: moving
// a block in the file changes nothing.
func (l *loader) fingerprint(ch *Chain) string {
	type fp struct {
		Name                                      string
		Collectors, Evaluators                    []string
		Realizer, Target                          string
		Interval, Jitter, Timeout, MaxSnapshotAge time.Duration
		Enabled                                   bool
		Policy                                    map[string]json.RawMessage
		Blocks                                    []string
	}
	p := fp{
		Name: ch.Name, Collectors: ch.Collectors, Evaluators: ch.Evaluators, Realizer: ch.Realizer, Target: ch.Target,
		Interval: ch.Interval, Jitter: ch.Jitter, Timeout: ch.Timeout, MaxSnapshotAge: ch.MaxSnapshotAge,
		Enabled: ch.Enabled, Policy: ch.Policy,
	}
	for _, kind := range []sdk.Kind{sdk.KindCollector, sdk.KindEvaluator, sdk.KindRealizer} {
		for _, n := range ch.blockNames(kind) {
			if b := l.cfg.Block(kind, n); b != nil {
				p.Blocks = append(p.Blocks, l.blockPrint(b))
			}
		}
	}
	raw, err := json.Marshal(p)
	if err != nil {
		// Every field is a plain value; this cannot fail, and an empty
		// fingerprint would only make a reload restart the chain.
		return ""
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// blockPrint hashes what defines a plugin block, once per load: thousands
// of chains share a block, and its config can be large.
func (l *loader) blockPrint(b *PluginBlock) string {
	if s, ok := l.blockPrints[b]; ok {
		return s
	}
	type block struct {
		Kind, Name, Plugin, SHA256 string
		Timeout                    time.Duration
		Config                     json.RawMessage
		PluginName, Version        string
	}
	raw, _ := json.Marshal(block{b.Kind.String(), b.Name, b.Plugin, b.SHA256, b.Timeout, b.Config, b.Info.Name, b.Info.Version})
	sum := sha256.Sum256(raw)
	s := hex.EncodeToString(sum[:])
	if l.blockPrints == nil {
		l.blockPrints = map[*PluginBlock]string{}
	}
	l.blockPrints[b] = s
	return s
}
